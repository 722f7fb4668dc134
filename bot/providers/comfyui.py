"""ComfyUI: upload the input, queue an API-format graph, follow the websocket, download outputs."""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import httpx
from pydantic import Field, field_validator

from bot.errors import InvalidProviderRequest, JobFailed
from bot.i18n import Msg
from bot.models import Capability, GenerationResult, ImageData, ProviderJob, SizeRules
from bot.providers.base import HttpProviderSettings, Provider, ProviderSettings, Reporter
from bot.providers.comfyui_workflow import (
    Workflow,
    WorkflowValues,
    as_object,
    execution_message,
    history_error,
    validation_message,
)
from bot.providers.http import RetryPolicy, json_body, raise_for_status, send

log = logging.getLogger(__name__)


class ComfyUISettings(HttpProviderSettings):
    """``[providers.NAME]`` keys of a ComfyUI server."""

    url: str = "http://127.0.0.1:8188"
    checkpoint: str | None = Field(
        None, description="default checkpoint; unset: the first one the server lists")
    workflow: Path | None = Field(
        None, description="API-format workflow file with {{placeholders}} (a relative path is "
        "taken from the working directory); unset: the built-in workflow")
    sampler: str = Field("euler", description="KSampler sampler_name of the built-in workflow")
    scheduler: str = Field("normal", description="KSampler scheduler of the built-in workflow")

    @field_validator("workflow")
    @classmethod
    def _workflow_loads(cls, value: Path | None) -> Path | None:
        if value is not None:
            Workflow.load(value)
        return value

    def load_workflow(self) -> Workflow:
        if self.workflow is not None:
            return Workflow.load(self.workflow)
        return Workflow.builtin(sampler=self.sampler, scheduler=self.scheduler)


class ComfyUIProvider(Provider):
    """A self-hosted ComfyUI server; progress comes from its websocket."""

    type_name = "comfyui"
    Settings = ComfyUISettings
    CAPABILITIES = (Capability.STRENGTH | Capability.SEED | Capability.NEGATIVE_PROMPT
                    | Capability.STEPS | Capability.CFG | Capability.SAMPLES
                    | Capability.PROGRESS | Capability.MODELS | Capability.CANCEL)
    # /upload/image keeps the file as sent and LoadImage opens it with PIL: JPEG.
    size_rules = SizeRules(multiple=8, min_side=64, max_side=2048, preferred_area=512 * 512,
                           max_area=2048 * 2048, max_samples=4, max_steps=150,
                           input_format="JPEG")

    def __init__(self, name: str, settings: ProviderSettings, http: httpx.AsyncClient) -> None:
        super().__init__(name, settings, http)
        assert isinstance(settings, ComfyUISettings)
        self.cfg = settings
        self.workflow = settings.load_workflow()
        self._session: aiohttp.ClientSession | None = None

    @property
    def rules(self) -> SizeRules:
        if not self.workflow.uses("samples"):
            return replace(self.size_rules, max_samples=1)
        return self.size_rules

    async def _generate(self, job: ProviderJob, reporter: Reporter) -> GenerationResult:
        params = job.params
        client_id = uuid.uuid4().hex
        # Connect before queueing so that no event of this prompt can be missed.
        ws = await self._connect(client_id)
        try:
            image_name = await self._upload(job, client_id)
            checkpoint = await self._checkpoint(params.model) if self.workflow.uses(
                "checkpoint") else ""
            seed = params.seed if params.seed is not None else random.randrange(2**32)
            graph = self.workflow.fill(WorkflowValues(
                prompt=params.prompt, negative_prompt=params.negative_prompt, seed=seed,
                steps=params.steps, cfg=params.cfg, denoise=params.strength, image=image_name,
                checkpoint=checkpoint, width=params.width, height=params.height,
                samples=params.samples))
            prompt_id = await self._queue(graph, client_id)
            reporter.accept()
            reporter.record("prompt_id", prompt_id)
            if ws is not None:
                await self._follow(ws, prompt_id, reporter)
        finally:
            if ws is not None:
                await ws.close()
        entry = await self._wait_history(prompt_id)
        images = [await self._download(ref) for ref in _output_images(entry)]
        reporter.progress(1.0)
        if checkpoint:
            reporter.record("checkpoint", checkpoint)
        return GenerationResult(images=tuple(images), seed=seed,
                                metadata=dict(reporter.metadata))

    async def _connect(self, client_id: str) -> aiohttp.ClientWebSocketResponse | None:
        base = self.cfg.base_url
        url = ("ws" + base[4:] if base.startswith("http") else base) + "/ws"
        try:
            return await self._ws_session().ws_connect(
                url, params={"clientId": client_id}, headers=self._headers(), heartbeat=30,
                max_msg_size=64 * 2**20)
        except (aiohttp.ClientError, TimeoutError) as exc:
            # Some reverse proxies do not pass websockets; polling /history still works.
            log.warning("provider %s: no websocket (%s); polling instead", self.name,
                        type(exc).__name__)
            return None

    def _ws_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            timeout = aiohttp.ClientTimeout(total=None, connect=self.cfg.connect_timeout)
            self._session = aiohttp.ClientSession(timeout=timeout)
        return self._session

    def _headers(self) -> dict[str, str]:
        key = self.cfg.key()
        return {"Authorization": f"Bearer {key}"} if key else {}

    async def _request(self, method: str, path: str, *, attempts: int | None = None,
                       **kwargs: Any) -> httpx.Response:
        retry = RetryPolicy(attempts=attempts) if attempts else self.cfg.retry_policy()
        return await send(self.http, method, self.cfg.base_url + path, retry=retry,
                          headers=self._headers(), timeout=self.cfg.timeouts(), **kwargs)

    async def _upload(self, job: ProviderJob, client_id: str) -> str:
        filename = f"img2img-bot-{client_id}.{job.image.extension}"
        response = await self._request(
            "POST", "/upload/image", files={"image": (filename, job.image.data, job.image.mime)},
            data={"overwrite": "true", "type": "input"})
        if response.status_code == 400:
            raise InvalidProviderRequest(msg=Msg("error-comfyui-upload"))
        raise_for_status(response)
        body = json_body(response)
        name, subfolder = str(body["name"]), str(body.get("subfolder") or "")
        return f"{subfolder}/{name}" if subfolder else name

    async def _checkpoint(self, requested: str | None) -> str:
        choice = requested or self.cfg.checkpoint
        if choice:
            return choice
        models = await self.list_models()
        if not models:
            raise InvalidProviderRequest(msg=Msg("error-comfyui-no-checkpoint"))
        return models[0]

    async def _queue(self, graph: dict[str, Any], client_id: str) -> str:
        # One attempt: a repeated POST /prompt would run the graph twice.
        response = await self._request("POST", "/prompt", attempts=1,
                                       json={"prompt": graph, "client_id": client_id})
        if response.status_code == 400:
            raise InvalidProviderRequest(msg=validation_message(json_body(response)))
        raise_for_status(response)
        return str(json_body(response)["prompt_id"])

    async def _follow(self, ws: aiohttp.ClientWebSocketResponse, prompt_id: str,
                      reporter: Reporter) -> None:
        """Report progress until the prompt finishes; return early if the socket closes."""
        started: dict[str, float] = {}
        async for message in ws:
            if message.type is not aiohttp.WSMsgType.TEXT:
                continue  # binary frames are previews
            event = as_object(json.loads(message.data))
            kind, data = event.get("type"), as_object(event.get("data"))
            if kind == "status" and not started:
                info = as_object(as_object(data.get("status")).get("exec_info"))
                queued = info.get("queue_remaining")
                if isinstance(queued, int) and queued > 0:
                    reporter.progress(None, text=f"waiting in the ComfyUI queue ({queued} queued)")
                continue
            # Older builds leave prompt_id out; the socket only carries this client's prompts.
            if data.get("prompt_id", prompt_id) != prompt_id:
                continue
            if kind == "execution_start":
                started["job"] = time.monotonic()
                reporter.progress(0.0, text="generating on ComfyUI")
            elif kind == "progress":
                self._report_step(data, started, reporter)
            elif kind == "execution_success" or (kind == "executing" and data.get("node") is None):
                return
            elif kind == "execution_error":
                raise JobFailed(msg=execution_message(data), accepted=True)
            elif kind == "execution_interrupted":
                raise JobFailed(msg=Msg("error-comfyui-interrupted"), accepted=True)
        log.info("provider %s: websocket closed early; polling the history", self.name)

    @staticmethod
    def _report_step(data: dict[str, Any], started: dict[str, float], reporter: Reporter) -> None:
        value, maximum = int(data["value"]), int(data["max"])
        node = str(data.get("node"))
        now = time.monotonic()
        first = started.setdefault(node, now)
        eta = (now - first) / value * (maximum - value) if value > 0 and now > first else None
        reporter.progress(value / maximum if maximum > 0 else None, eta,
                          f"step {value}/{maximum}")

    async def _wait_history(self, prompt_id: str) -> dict[str, Any]:
        """The finished history entry (polled when the websocket could not say it is done)."""
        while True:
            response = await self._request("GET", f"/history/{prompt_id}")
            raise_for_status(response, accepted=True)
            entry = as_object(json_body(response)).get(prompt_id)
            if isinstance(entry, dict):
                status = as_object(entry.get("status"))
                if status.get("status_str") == "error":
                    raise JobFailed(msg=history_error(status), accepted=True)
                if status.get("completed", True):
                    return entry
            await asyncio.sleep(self.cfg.poll_interval)

    async def _download(self, ref: dict[str, Any]) -> ImageData:
        response = await self._request("GET", "/view", params={
            "filename": ref["filename"], "subfolder": ref.get("subfolder", ""),
            "type": ref.get("type", "output")})
        raise_for_status(response, accepted=True)
        mime = response.headers.get("content-type", "").split(";")[0].strip()
        if not mime.startswith("image/"):
            mime = _mime_for(str(ref["filename"]))
        return ImageData(response.content, mime)

    async def cancel(self, job: ProviderJob, reporter: Reporter) -> None:
        prompt_id = reporter.metadata.get("prompt_id")
        if not prompt_id:
            return
        await self._request("POST", "/queue", attempts=1, json={"delete": [prompt_id]})
        running = as_object(json_body(await self._request("GET", "/queue"))).get("queue_running")
        if isinstance(running, list) and any(
                isinstance(item, list) and prompt_id in item[:2] for item in running):
            # Newer builds interrupt only the named prompt; older ones whatever runs, which
            # is then ours.
            await self._request("POST", "/interrupt", attempts=1, json={"prompt_id": prompt_id})

    async def health(self) -> str:
        response = await self._request("GET", "/system_stats")
        raise_for_status(response)
        body = as_object(json_body(response))
        version = as_object(body.get("system")).get("comfyui_version", "unknown version")
        devices = body.get("devices")
        device = as_object(devices[0]).get("name", "?") if isinstance(devices, list) and devices \
            else "no device listed"
        return f"ok (ComfyUI {version} on {device})"

    async def list_models(self) -> list[str]:
        response = await self._request("GET", "/models/checkpoints")
        if response.status_code == 404:  # builds before /models existed
            response = await self._request("GET", "/object_info/CheckpointLoaderSimple")
            raise_for_status(response)
            return _combo_options(json_body(response))
        raise_for_status(response)
        body = json_body(response)
        return [str(name) for name in body] if isinstance(body, list) else []

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _output_images(entry: dict[str, Any]) -> list[dict[str, Any]]:
    """Images of the output nodes; previews (``temp``) only when nothing was saved."""
    found = [as_object(image) for node in as_object(entry.get("outputs")).values()
             for image in (as_object(node).get("images") or [])]
    saved = [image for image in found if image.get("type", "output") == "output"]
    return saved or found


def _combo_options(body: Any) -> list[str]:
    spec = body["CheckpointLoaderSimple"]["input"]["required"]["ckpt_name"]
    options = spec[0]
    if options == "COMBO":  # newer object_info: ["COMBO", {"options": [...]}]
        options = spec[1].get("options", [])
    return [str(name) for name in options]


def _mime_for(filename: str) -> str:
    suffix = filename.rsplit(".", 1)[-1].lower()
    return {"jpg": "image/jpeg", "jpeg": "image/jpeg", "webp": "image/webp"}.get(suffix,
                                                                                "image/png")
