"""ModelsLab img2img: upload the input through base64_to_url, submit, wait out the ETA, download.

The key travels in the JSON body of every API call (ModelsLab has no auth header) and never in
a URL; result downloads carry no key. Errors arrive as ``{"status": "error", "message": ...}``
with HTTP 200 as often as with a 4xx, so the message decides the kind when the status cannot.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from typing import Any, Literal

import httpx
from pydantic import Field, model_validator

from bot.errors import ContentFiltered, ProviderError, ProviderUnavailable
from bot.i18n import Msg
from bot.models import Capability, GenerationResult, ImageData, Params, ProviderJob, SizeRules
from bot.options import Overrides
from bot.providers.base import HttpProviderSettings, Provider, ProviderSettings, Reporter
from bot.providers.http import error_detail, error_for_status, json_body, retry_after_of, send
from bot.providers.results import check_rules, fetch_image

log = logging.getLogger(__name__)

# (generation path, fetch path) per endpoint family, relative to the base URL.
ENDPOINTS: dict[str, tuple[str, str]] = {
    "realtime": ("v6/realtime/img2img", "v6/realtime/fetch"),
    "enterprise": ("v1/enterprise/realtime/img2img", "v1/enterprise/realtime/fetch"),
    "community": ("v6/images/img2img", "v6/images/fetch"),
}
# (path, body field of the data URL) per upload helper.
UPLOADS: dict[str, tuple[str, str]] = {
    "base64_to_url": ("v6/base64_to_url", "base64_string"),
    "image_editing": ("v6/image_editing/base64_to_url", "init_image"),
}
# A generation is repeated only on answers that mean it was not started (no double charge).
SUBMIT_RETRY = frozenset({429, 503})
# Words in an error message and the HTTP status they stand for (errors often come with 200).
MESSAGE_STATUS = (("api key", 401), ("unauthori", 401), ("subscription", 403), ("credit", 402),
                  ("balance", 402), ("rate limit", 429), ("queued requests", 429))
# The upload limit is 5 MB of base64 text, which is 4/3 of the bytes.
_REALTIME = SizeRules(multiple=8, min_side=256, max_side=1024, preferred_area=512 * 512,
                      max_area=1024 * 1024, max_samples=4, max_input_bytes=3_700_000,
                      input_format="PNG")
# The community docs clamp num_inference_steps above 20 and guidance_scale to 1..20.
_COMMUNITY = SizeRules(multiple=8, min_side=256, max_side=1024, preferred_area=512 * 512,
                       max_area=1024 * 1024, max_samples=4, max_input_bytes=3_700_000,
                       input_format="PNG", min_steps=1, max_steps=20)
# The community docs' guidance_scale default, and their steps ceiling.
COMMUNITY_DEFAULTS = Overrides(cfg=7.5, steps=20)
_COMMUNITY_ONLY = Capability.STEPS | Capability.CFG | Capability.MODELS


class ModelsLabSettings(HttpProviderSettings):
    """``[providers.NAME]`` keys of ``type = "modelslab"``."""

    url: str = "https://modelslab.com/api"
    endpoint: Literal["realtime", "enterprise", "community"] = Field(
        "realtime", description="realtime (v6), enterprise realtime, or community models")
    model_id: str | None = Field(None, description="community model id (needed for community)")
    community_fetch: Literal["body", "path"] = Field(
        "body", description="community fetch: the documented /images/fetch with request_id in "
        "the body, or /images/fetch/{id} as modelslab-py sends it")
    upload: Literal["base64_to_url", "image_editing"] = "base64_to_url"
    max_eta_wait: float = Field(30.0, gt=0, description="longest single wait on an announced eta")
    scheduler: str | None = None
    enhance_prompt: bool = False
    temp: bool = Field(False, description="ask for temporary (24 h) result links")

    @model_validator(mode="after")
    def _community_needs_model(self) -> ModelsLabSettings:
        if self.endpoint == "community" and not self.model_id:
            raise ValueError("model_id is required when endpoint = 'community'")
        return self


class ModelsLabProvider(Provider):
    """ModelsLab realtime, enterprise or community img2img over its queued JSON API."""

    type_name = "modelslab"
    Settings = ModelsLabSettings
    CAPABILITIES = (Capability.STRENGTH | Capability.SEED | Capability.NEGATIVE_PROMPT
                    | Capability.SAMPLES | Capability.PROGRESS | Capability.SAFETY)
    size_rules = _REALTIME

    def __init__(self, name: str, settings: ProviderSettings, http: httpx.AsyncClient) -> None:
        if not isinstance(settings, ModelsLabSettings):
            raise TypeError("ModelsLabProvider needs ModelsLabSettings")
        super().__init__(name, settings, http)
        self.cfg = settings

    def capabilities_for(self, settings: ProviderSettings) -> Capability:
        # Community models also take steps, cfg and a model name.
        community = isinstance(settings, ModelsLabSettings) and settings.endpoint == "community"
        return self.CAPABILITIES | (_COMMUNITY_ONLY if community else Capability(0))

    @property
    def community(self) -> bool:
        return self.cfg.endpoint == "community"

    @property
    def rules(self) -> SizeRules:
        return _COMMUNITY if self.community else _REALTIME

    def builtin_defaults(self, model: str | None) -> Overrides:
        return COMMUNITY_DEFAULTS if self.community else Overrides()

    def _url(self, path: str) -> str:
        return f"{self.cfg.base_url}/{path}"

    async def _post(self, path: str, body: dict[str, Any], *,
                    retry_statuses: frozenset[int] | None = None) -> httpx.Response:
        kwargs: dict[str, Any] = {} if retry_statuses is None else {
            "retry_statuses": retry_statuses}
        return await send(self.http, "POST", self._url(path), json={"key": self.cfg.key(), **body},
                          retry=self.cfg.retry_policy(), timeout=self.cfg.timeouts(), **kwargs)

    async def _generate(self, job: ProviderJob, reporter: Reporter) -> GenerationResult:
        check_rules(job.params, self.rules, steps=self.community)
        init_url = await self.upload(job.image)
        generate_path, _ = ENDPOINTS[self.cfg.endpoint]
        response = await self._post(generate_path, self._body(job.params, init_url),
                                    retry_statuses=SUBMIT_RETRY)
        data = parse(response, accepted=False)
        remote_id = data.get("id")
        reporter.accept()
        if remote_id is not None:
            reporter.record("modelslab_id", remote_id)
        while data["status"] == "processing":
            if remote_id is None:
                raise KeyError("a queued answer without an id")
            eta = _number(data.get("eta"))
            reporter.progress(None, eta, "Queued at ModelsLab")
            await asyncio.sleep(min(eta or self.cfg.poll_interval, self.cfg.max_eta_wait))
            data = await self._fetch(remote_id)
        return await self._result(job, data, reporter)

    async def upload(self, image: ImageData) -> str:
        """A ModelsLab-hosted URL of ``image`` (never a chat platform's file URL)."""
        path, field = UPLOADS[self.cfg.upload]
        data_url = f"data:{image.mime};base64,{base64.b64encode(image.data).decode('ascii')}"
        data = parse(await self._post(path, {field: data_url}), accepted=False)
        url = data["output"][0]
        if not isinstance(url, str) or not url.startswith(("https://", "http://")):
            raise ValueError("base64_to_url answered without a URL")
        return url

    def _body(self, params: Params, init_url: str) -> dict[str, Any]:
        body: dict[str, Any] = {
            "prompt": params.prompt, "negative_prompt": params.negative_prompt,
            "init_image": init_url, "width": params.width, "height": params.height,
            "samples": params.samples, "strength": params.strength, "seed": params.seed,
            "safety_checker": not params.nsfw_allowed, "base64": False, "temp": self.cfg.temp,
            "webhook": None, "track_id": None,
        }
        if self.cfg.enhance_prompt:
            body["enhance_prompt"] = True
        if self.community:
            body.update(model_id=params.model or self.cfg.model_id,
                        num_inference_steps=params.steps,
                        guidance_scale=min(20.0, max(1.0, params.cfg)))
            if self.cfg.scheduler:
                body["scheduler"] = self.cfg.scheduler
        return body

    async def _fetch(self, remote_id: Any) -> dict[str, Any]:
        _, fetch_path = ENDPOINTS[self.cfg.endpoint]
        if self.community and self.cfg.community_fetch == "body":
            response = await self._post(fetch_path, {"request_id": remote_id})
        else:
            response = await self._post(f"{fetch_path}/{remote_id}", {})
        return parse(response, accepted=True)

    async def _result(self, job: ProviderJob, data: dict[str, Any],
                      reporter: Reporter) -> GenerationResult:
        if data.get("nsfw_content_detected") and not job.params.nsfw_allowed:
            raise ContentFiltered(accepted=True)
        links = data.get("output") or data.get("proxy_links") or data.get("future_links") or []
        if not isinstance(links, list):
            raise TypeError("output is not a list")
        reporter.progress(1.0, 0.0, "Downloading")
        images = tuple([await fetch_image(self.fetcher, str(item), attempts=self.cfg.retries)
                        for item in links])
        meta = data.get("meta") if isinstance(data.get("meta"), dict) else {}
        seed = _int(meta.get("seed") if meta else None)
        if data.get("generationTime") is not None:
            reporter.record("generation_time", data["generationTime"])
        return GenerationResult(images=images, seed=job.params.seed if seed is None else seed,
                                metadata={"modelslab_id": data.get("id")})

    async def health(self) -> str:
        """Uploading a 1×1 PNG through base64_to_url checks key and reachability for free."""
        pixel = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk"
                                 "+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==")
        try:
            await self.upload(ImageData(pixel, "image/png"))
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise ProviderUnavailable(msg=Msg("error-answer-malformed")) from exc
        return f"ok (key accepted; {self.cfg.endpoint} endpoint)"

    async def list_models(self) -> list[str]:
        return [self.cfg.model_id] if self.community and self.cfg.model_id else []


def parse(response: httpx.Response, *, accepted: bool) -> dict[str, Any]:
    """The body of a ModelsLab answer, or the mapped error for any failure shape."""
    if not response.is_success:
        raise failure(response, accepted=accepted)
    data = json_body(response)
    if not isinstance(data, dict):
        raise TypeError("the answer is not a JSON object")
    status = data.get("status")
    if status in ("error", "failed"):
        raise failure(response, accepted=accepted)
    if status not in ("success", "processing"):
        raise ValueError(f"unknown status {status!r}")
    return data


def failure(response: httpx.Response, *, accepted: bool) -> ProviderError:
    """Map an error answer onto the tree; with HTTP 200 or a plain 400 the message decides."""
    detail = error_detail(response)
    status = response.status_code
    if status < 400 or status == 400:
        low = detail.lower()
        status = next((code for word, code in MESSAGE_STATUS if word in low), 400)
    log.info("modelslab answered HTTP %s: %s", response.status_code, detail)
    return error_for_status(status, detail, retry_after=retry_after_of(response),
                            accepted=accepted)


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
