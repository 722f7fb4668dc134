"""Stability AI: REST v1 image-to-image (SD 1.6, SDXL) or v2beta Stable Image (SD3.x, Ultra).

``api_version`` picks the protocol; v1 uses ``engine``, v2beta ``endpoint`` (and ``model`` for
sd3). A request over the 10 MiB limit is re-encoded smaller first; a 413 anyway shrinks the
image once more and retries once. The balance endpoint serves ``doctor`` without spending credits.
"""

from __future__ import annotations

import logging
import re
from dataclasses import replace
from typing import Literal

import httpx
from pydantic import Field, model_validator

from bot import imaging
from bot.errors import InvalidProviderRequest, ProviderCreditsError
from bot.i18n import Msg
from bot.models import Capability, GenerationResult, ImageData, ProviderJob, SizeRules
from bot.options import Overrides
from bot.providers import stability_v1 as v1
from bot.providers import stability_v2 as v2
from bot.providers.base import HttpProviderSettings, Provider, ProviderSettings, Reporter
from bot.providers.http import send
from bot.providers.stability_wire import STYLE_PRESETS, Outcome, failure

log = logging.getLogger(__name__)

Sampler = Literal["DDIM", "DDPM", "K_DPMPP_2M", "K_DPMPP_2S_ANCESTRAL", "K_DPM_2",
                  "K_DPM_2_ANCESTRAL", "K_EULER", "K_EULER_ANCESTRAL", "K_HEUN", "K_LMS"]
ClipPreset = Literal["FAST_BLUE", "FAST_GREEN", "NONE", "SIMPLE", "SLOW", "SLOWER", "SLOWEST"]
# A generation is repeated only on answers that mean it was not started (no double charge).
SUBMIT_RETRY = frozenset({429, 503})
FORM_OVERHEAD = 64 * 1024
MIN_SHRINK_BYTES = 64 * 1024
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,99}$")
V1_DEFAULTS = Overrides(cfg=7.0, steps=30)
_ALWAYS = Capability.STRENGTH | Capability.SEED | Capability.NEGATIVE_PROMPT


class StabilitySettings(HttpProviderSettings):
    """Keys of a ``type = "stability"`` provider."""

    url: str = "https://api.stability.ai"
    api_version: Literal["v1", "v2beta"] = "v2beta"
    engine: str = Field("stable-diffusion-v1-6", description="v1 engine id")
    endpoint: Literal["sd3", "ultra"] = Field("sd3", description="v2beta generate endpoint")
    model: str = Field("sd3.5-large", description="v2beta sd3 model")
    accept: Literal["json", "image"] = Field(
        "json", description="answer as JSON (v1: several samples) or raw image bytes"
    )
    output_format: Literal["png", "jpeg", "webp"] = Field("png", description="v2beta only")
    sampler: Sampler | None = Field(None, description="v1 only; omitted: the API picks")
    clip_guidance_preset: ClipPreset | None = Field(None, description="v1 only")
    organization: str | None = Field(None, description="Organization header (org-...)")
    client_id: str | None = Field("img2img-bot", description="Stability-Client-ID header")
    max_request_bytes: int = Field(10 * 1024 * 1024, gt=FORM_OVERHEAD,
                                   description="the API's request size limit")

    @model_validator(mode="after")
    def _consistent(self) -> StabilitySettings:
        if self.output_format == "webp" and not (
                self.api_version == "v2beta" and self.endpoint == "ultra"):
            raise ValueError("output_format = 'webp' needs api_version 'v2beta' and 'ultra'")
        for key in ("engine", "model"):
            if not _NAME.match(getattr(self, key)):
                raise ValueError(f"{key} must look like 'stable-diffusion-v1-6' or 'sd3.5-large'")
        return self


class StabilityProvider(Provider):
    """Stability AI's hosted API; capabilities and size rules follow the configured version."""

    type_name = "stability"
    Settings = StabilitySettings
    CAPABILITIES = _ALWAYS  # what every configuration supports; ``capabilities_for`` adds
    size_rules = v2.RULES
    styles = STYLE_PRESETS

    def capabilities_for(self, settings: ProviderSettings) -> Capability:
        if not isinstance(settings, StabilitySettings):
            raise TypeError("StabilityProvider needs StabilitySettings")
        if settings.api_version == "v1":
            extra = Capability.STEPS | Capability.CFG | Capability.STYLES | Capability.MODELS
            if settings.accept == "json":
                extra |= Capability.SAMPLES
        elif settings.endpoint == "sd3":
            extra = Capability.MODELS
        else:
            extra = Capability.STYLES
        return _ALWAYS | extra

    @property
    def conf(self) -> StabilitySettings:
        assert isinstance(self.settings, StabilitySettings)
        return self.settings

    @property
    def rules(self) -> SizeRules:
        if self.conf.api_version == "v2beta":
            return v2.RULES
        rules = v1.rules_for(self.conf.engine)
        # Several samples come only as JSON artifacts.
        return rules if self.conf.accept == "json" else replace(rules, max_samples=1)

    def builtin_defaults(self, model: str | None) -> Overrides:
        # v1 documents cfg_scale 7 and 30 steps; v2beta takes neither.
        return V1_DEFAULTS if self.conf.api_version == "v1" else Overrides()

    def _headers(self, accept: str) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.conf.key()}", "Accept": accept}
        if self.conf.organization:
            headers["Organization"] = self.conf.organization
        if self.conf.client_id:
            headers["Stability-Client-ID"] = self.conf.client_id
        return headers

    async def _generate(self, job: ProviderJob, reporter: Reporter) -> GenerationResult:
        conf, params = self.conf, job.params
        base = conf.base_url
        if conf.api_version == "v1":
            engine = _checked_name(params.model or conf.engine)
            samples = params.samples if conf.accept == "json" else 1
            fields = v1.form(params, engine, samples=samples, sampler=conf.sampler,
                             clip_guidance_preset=conf.clip_guidance_preset)
            url, image_field = f"{base}/v1/generation/{engine}/image-to-image", "init_image"
            accept, parse = v1.accept_header(conf.accept), v1.parse
            reporter.record("engine", engine)
        else:
            model = _checked_name(params.model or conf.model)
            fields = v2.form(params, conf.endpoint, model, conf.output_format)
            url, image_field = f"{base}/v2beta/stable-image/generate/{conf.endpoint}", "image"
            accept, parse = v2.accept_header(conf.accept), v2.parse
            reporter.record("model", model if conf.endpoint == "sd3" else conf.endpoint)
        image = job.image
        budget = conf.max_request_bytes - FORM_OVERHEAD
        if len(image.data) > budget:
            image = await shrink(image, budget)
        response = await self._post(url, fields, image_field, image, accept)
        if response.status_code == 413:
            log.info("stability %s: request too large (%d bytes); shrinking the image once",
                     self.name, len(image.data))
            image = await shrink(image, max(len(image.data) // 2, MIN_SHRINK_BYTES))
            response = await self._post(url, fields, image_field, image, accept)
        if not response.is_success:
            raise failure(response)
        reporter.accept()
        if request_id := response.headers.get("x-request-id"):
            reporter.record("request_id", request_id)
        outcome: Outcome = parse(response)
        if outcome.filtered:
            reporter.record("content_filtered", outcome.filtered)
        return GenerationResult(images=outcome.images, seed=outcome.seed,
                                nsfw_filtered=bool(outcome.filtered))

    async def _post(self, url: str, fields: dict[str, str], image_field: str, image: ImageData,
                    accept: str) -> httpx.Response:
        log.debug("stability %s: POST %s (%d image bytes)", self.name, url, len(image.data))
        files = {image_field: (f"input.{image.extension}", image.data, image.mime)}
        return await send(self.http, "POST", url, data=fields, files=files,
                          headers=self._headers(accept), timeout=self.conf.timeouts(),
                          retry=self.conf.retry_policy(), retry_statuses=SUBMIT_RETRY)

    async def _get(self, path: str) -> httpx.Response:
        response = await send(self.http, "GET", self.conf.base_url + path,
                              headers=self._headers("application/json"),
                              timeout=self.conf.timeouts(), retry=self.conf.retry_policy())
        if not response.is_success:
            raise failure(response)
        return response

    async def health(self) -> str:
        credits = float((await self._get("/v1/user/balance")).json()["credits"])
        if credits <= 0:
            raise ProviderCreditsError()
        return f"ok ({credits:g} credits left)"

    async def list_models(self) -> list[str]:
        if self.conf.api_version == "v2beta":
            return list(v2.SD3_MODELS) if self.conf.endpoint == "sd3" else []
        engines = (await self._get("/v1/engines/list")).json()
        return [str(e["id"]) for e in engines if e.get("type", "PICTURE") == "PICTURE"]


def _checked_name(name: str) -> str:
    """An engine or model id; it goes into a URL, so anything unusual is refused."""
    if not _NAME.match(name):
        raise InvalidProviderRequest(msg=Msg("error-no-model", {"name": repr(name[:40])}))
    return name


async def shrink(image: ImageData, max_bytes: int) -> ImageData:
    """The image re-encoded (JPEG, then smaller if needed) to fit ``max_bytes``, off the loop."""
    return await imaging.off_loop(_reencode, image.data, max_bytes)


def _reencode(data: bytes, max_bytes: int) -> ImageData:
    return imaging.encode(imaging.decode(data), "JPEG", max_bytes=max_bytes)
