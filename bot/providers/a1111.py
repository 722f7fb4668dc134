"""AUTOMATIC1111 / Forge / SD.Next WebUI API (``/sdapi/v1``), with optional HTTP Basic auth."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import Mapping
from typing import Any

import httpx
from pydantic import Field, SecretStr, model_validator

from bot.errors import (
    ConfigError,
    InvalidProviderRequest,
    JobFailed,
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
)
from bot.i18n import Msg
from bot.models import Capability, GenerationResult, ProviderJob, SizeRules
from bot.providers.base import HttpProviderSettings, Provider, Reporter, env_name, env_secret
from bot.providers.http import error_detail, json_body, raise_for_status, rejected, send
from bot.providers.results import decode_image
from bot.redact import redact, register_secret

log = logging.getLogger(__name__)

# Proxies and queue front-ends answer these before the WebUI starts any work; a 500 means
# the WebUI itself failed mid-job, and a 502/504 may hide a job still running behind them.
IMG2IMG_RETRY_STATUSES = frozenset({429, 503})


class A1111Settings(HttpProviderSettings):
    """Keys of ``type = "a1111"``."""

    url: str = "http://127.0.0.1:7860"
    username: str | None = Field(None, description="HTTP Basic user (--api-auth / --auth)")
    password: SecretStr | None = None
    password_env: str | None = Field(
        None, description="environment variable holding the password (default: NAME_PASSWORD)"
    )
    sampler: str | None = Field(None, description="sampler_name; the server's default when unset")
    scheduler: str | None = Field(None, description="A1111 1.9+ scheduler, e.g. 'Karras'")
    poll_interval: float = Field(1.0, gt=0)
    preferred_side: int = Field(512, ge=64, le=4096, description="512 for SD 1.5, 1024 for SDXL")
    max_side: int = Field(2048, ge=64, le=8192)
    max_samples: int = Field(4, ge=1, le=16)

    @model_validator(mode="after")
    def _no_api_key(self) -> A1111Settings:
        if self.api_key is not None or self.api_key_env is not None:
            raise ValueError("api_key: the WebUI uses username and password (HTTP Basic)")
        return self

    def resolve_secrets(self, name: str, environ: Mapping[str, str]) -> None:
        self.password = env_secret(self.password, environ,
                                   self.password_env or env_name(name, "PASSWORD"))
        if self.password is not None and self.username is None:
            raise ConfigError(f"providers.{name}.username: a password needs a username")
        if self.password is None and self.username is not None:
            raise ConfigError(f"providers.{name}.password: username is set but no password "
                              f"(set it here or in {env_name(name, 'PASSWORD')})")
        if self.username is not None and self.password is not None:
            # A server that echoes its request headers must not leak the encoded pair either.
            pair = f"{self.username}:{self.password.get_secret_value()}"
            register_secret(base64.b64encode(pair.encode()).decode("ascii"))

    def basic_auth(self) -> httpx.BasicAuth | None:
        if self.username is None or self.password is None:
            return None
        return httpx.BasicAuth(self.username, self.password.get_secret_value())


class A1111Provider(Provider):
    """The WebUI's synchronous img2img endpoint, with ``/progress`` polled while it runs."""

    type_name = "a1111"
    Settings = A1111Settings
    CAPABILITIES = (Capability.STRENGTH | Capability.SEED | Capability.NEGATIVE_PROMPT
                    | Capability.STEPS | Capability.CFG | Capability.SAMPLES
                    | Capability.PROGRESS | Capability.MODELS | Capability.CANCEL)
    # init_images: base64 of anything PIL reads (the WebUI decodes with PIL): JPEG.
    size_rules = SizeRules(multiple=8, min_side=64, max_side=2048, preferred_area=512 * 512,
                           max_input_bytes=20 * 1024 * 1024, input_format="JPEG")

    settings: A1111Settings

    @property
    def rules(self) -> SizeRules:
        side = self.settings.max_side
        return SizeRules(multiple=8, min_side=64, max_side=side,
                         preferred_area=self.settings.preferred_side ** 2, max_area=side * side,
                         max_samples=self.settings.max_samples, max_input_bytes=20 * 1024 * 1024,
                         input_format="JPEG")

    def _url(self, path: str) -> str:
        return f"{self.settings.base_url}/sdapi/v1/{path}"

    @staticmethod
    def task_id(job: ProviderJob) -> str:
        """The ``force_task_id`` sent with a job; ``/progress`` reports it as ``current_task``."""
        return f"task(img2img-bot-{job.job_id})"

    def payload(self, job: ProviderJob) -> dict[str, Any]:
        """The img2img request body for ``job``."""
        p = job.params
        body: dict[str, Any] = {
            "init_images": [base64.b64encode(job.image.data).decode("ascii")],
            "denoising_strength": p.strength,
            "prompt": p.prompt,
            "negative_prompt": p.negative_prompt,
            "seed": -1 if p.seed is None else p.seed,
            "steps": p.steps,
            "cfg_scale": p.cfg,
            "width": p.width,
            "height": p.height,
            "batch_size": p.samples,
            "n_iter": 1,
            "send_images": True,
            "save_images": False,
            "force_task_id": self.task_id(job),
        }
        if self.settings.sampler:
            body["sampler_name"] = self.settings.sampler
        if self.settings.scheduler:
            body["scheduler"] = self.settings.scheduler
        if p.model:
            body["override_settings"] = {"sd_model_checkpoint": p.model}
        return body

    async def _generate(self, job: ProviderJob, reporter: Reporter) -> GenerationResult:
        # The WebUI starts work once it has the whole body: if the connection is lost or the
        # job times out between then and the answer, the job may be running there (accepted).
        in_flight = False

        async def on_trace(event: str, info: dict[str, Any]) -> None:
            nonlocal in_flight
            if event.endswith("send_request_body.complete"):
                in_flight = True
            elif event.endswith("receive_response_headers.complete"):
                in_flight = False

        poller = asyncio.create_task(self._watch_progress(job, reporter))
        try:
            response = await send(
                self.http, "POST", self._url("img2img"), json=self.payload(job),
                auth=self.settings.basic_auth(),
                timeout=httpx.Timeout(job.timeout, connect=self.settings.connect_timeout),
                retry=self.settings.retry_policy(), retry_statuses=IMG2IMG_RETRY_STATUSES,
                extensions={"trace": on_trace},
            )
        except (ProviderUnavailable, ProviderTimeout) as exc:
            exc.accepted = in_flight
            raise
        except asyncio.CancelledError:
            if in_flight:
                reporter.accept()
            raise
        finally:
            poller.cancel()
            await asyncio.wait([poller])
        if not response.is_success:
            try:
                raise_a1111_error(response)
            except ProviderError as exc:
                if exc.accepted:
                    reporter.accept()
                raise
        reporter.accept()
        return self._parse(job, reporter, response.json())

    def _parse(self, job: ProviderJob, reporter: Reporter, body: Any) -> GenerationResult:
        if not isinstance(body, dict):
            raise TypeError("the answer is not a JSON object")
        info = _parse_info(body.get("info"))
        first = info.get("index_of_first_image", 0)
        first = first if isinstance(first, int) and first >= 0 else 0
        encoded = body["images"][first:first + job.params.samples]
        images = tuple(decode_image(item) for item in encoded)
        seed = info.get("seed")
        if not isinstance(seed, int):
            seed = job.params.seed
        if isinstance(info.get("all_seeds"), list):
            reporter.record("seeds", info["all_seeds"])
        if isinstance(info.get("sd_model_name"), str):
            reporter.record("model", info["sd_model_name"])
        return GenerationResult(images=images, seed=seed, metadata=dict(reporter.metadata))

    async def _watch_progress(self, job: ProviderJob, reporter: Reporter) -> None:
        """Poll ``/progress`` until cancelled; report our task's fraction and ETA."""
        ours = self.task_id(job)
        while True:
            await asyncio.sleep(self.settings.poll_interval)
            try:
                response = await self.http.get(
                    self._url("progress"), params={"skip_current_image": "true"},
                    auth=self.settings.basic_auth(), timeout=self.settings.timeouts())
                body = response.json() if response.is_success else None
            except (httpx.HTTPError, ValueError) as exc:
                log.debug("provider %s: progress poll failed: %s", self.name, type(exc).__name__)
                continue
            if not isinstance(body, dict):
                continue
            state = body.get("state")
            running = state.get("job_count", 1) if isinstance(state, dict) else 1
            current = body.get("current_task")
            if current is not None and current != ours:
                reporter.progress(None, None, "waiting for the server's queue")
            elif running and isinstance(body.get("progress"), int | float):
                eta = body.get("eta_relative")
                reporter.progress(float(body["progress"]),
                                  float(eta) if isinstance(eta, int | float) and eta > 0 else None)

    async def cancel(self, job: ProviderJob, reporter: Reporter) -> None:
        """Interrupt the job, but only while it is the one running: interrupt is server-wide."""
        auth = self.settings.basic_auth()
        response = await self.http.get(self._url("progress"),
                                       params={"skip_current_image": "true"},
                                       auth=auth, timeout=self.settings.timeouts())
        try:
            body = response.json() if response.is_success else {}
        except ValueError:
            body = {}
        state = body.get("state") if isinstance(body, dict) else None
        current = body.get("current_task") if isinstance(body, dict) else None
        if isinstance(state, dict) and state.get("job_count") == 0:
            return
        if current is not None and current != self.task_id(job):
            log.info("provider %s: job %s still queued; not interrupting %s",
                     self.name, job.job_id, current)
            return
        await self.http.request("POST", self._url("interrupt"), auth=auth,
                                timeout=self.settings.timeouts())

    async def list_models(self) -> list[str]:
        response = await send(self.http, "GET", self._url("sd-models"),
                              auth=self.settings.basic_auth(), timeout=self.settings.timeouts(),
                              retry=self.settings.retry_policy())
        raise_for_status(response)
        body = json_body(response)
        if not isinstance(body, list):
            raise ProviderUnavailable(msg=Msg("error-answer-unreadable"))
        return [str(m["title"]) for m in body if isinstance(m, dict) and "title" in m]

    async def health(self) -> str:
        """Checks reachability and auth through the model list; raises the mapped error."""
        models = await self.list_models()
        return f"ok ({len(models)} model{'s' if len(models) != 1 else ''})"


def raise_a1111_error(response: httpx.Response) -> None:
    """Map the WebUI's error answers (middleware JSON, FastAPI 422, proxy 5xx) onto the tree."""
    status = response.status_code
    if status == 422:
        raise rejected(_validation_detail(response))
    if status == 500:
        raise _server_error(response)
    raise_for_status(response, accepted=status == 504)
    raise ProviderUnavailable()  # pragma: no cover - raise_for_status raised for non-2xx


def _server_error(response: httpx.Response) -> ProviderError:
    try:
        body = response.json()
    except ValueError:
        body = {}
    body = body if isinstance(body, dict) else {}
    error, detail = str(body.get("error", "")), str(body.get("detail", ""))
    errors = redact(str(body.get("errors", "")))[:300]
    if "Invalid encoded image" in detail:
        return InvalidProviderRequest(msg=Msg("error-input-unreadable"))
    if "OutOfMemory" in error or "out of memory" in errors.lower():
        return JobFailed(msg=Msg("error-out-of-memory"), accepted=True)
    log.warning("a1111 server error %s: %s %s", error or "?", redact(detail)[:200], errors)
    return JobFailed(accepted=True)


def _validation_detail(response: httpx.Response) -> str:
    """``field: message`` pairs from FastAPI's ``{"detail": [{loc, msg, type}]}``."""
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        detail = None
    if isinstance(detail, list):
        parts = []
        for item in detail[:3]:
            if isinstance(item, dict):
                loc = [str(p) for p in item.get("loc", []) if p != "body"]
                parts.append(f"{'.'.join(loc) or 'body'}: {item.get('msg', 'invalid')}")
        if parts:
            return redact("; ".join(parts))[:300]
    return error_detail(response)


def _parse_info(raw: Any) -> dict[str, Any]:
    """``info`` is a JSON string; a broken one costs the seed, not the images."""
    if isinstance(raw, dict):
        return raw
    try:
        info = json.loads(raw) if isinstance(raw, str) else {}
    except json.JSONDecodeError:
        log.warning("a1111 sent an unreadable info string")
        return {}
    return info if isinstance(info, dict) else {}
