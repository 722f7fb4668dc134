"""AIThriving "Basic Image To Image" (SD 1.6): multipart POST, ``{code, message, data}`` answer.

Failures come as ``code: -1`` with a free-text ``message``, on HTTP 200 as often as on an error
status, so the message text is mapped onto the error tree. ``image_strength`` is the inverse of
the core's strength (1 keeps the input). The API host is not documented: set ``url``.

The document names the key's header twice, differently: its header table says
``Authentication``, its runnable example sends ``Authorization`` (the raw key, no prefix). Unless
``auth_header`` picks one, the key goes in both, so either reading of the server works; ``doctor``
tries each alone and says which one the server accepted.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

import httpx
from pydantic import Field

from bot.errors import (
    ContentFiltered,
    InvalidProviderRequest,
    ProviderAuthError,
    ProviderCreditsError,
    ProviderError,
    ProviderUnavailable,
    RateLimited,
)
from bot.models import Capability, GenerationResult, ProviderJob, SizeRules
from bot.options import Overrides
from bot.providers.base import HttpProviderSettings, Provider, Reporter
from bot.providers.http import error_for_status, failed_job, parse_retry_after, rejected, send
from bot.providers.results import decode_image, no_style, side_rules
from bot.redact import redact

log = logging.getLogger(__name__)

# A generation is repeated only on answers that mean it was not started (no double charge).
SUBMIT_RETRY = frozenset({429, 503})
STYLE_PRESETS = (
    "3d-model", "analog-film", "anime", "cinematic", "comic-book", "digital-art", "enhance",
    "fantasy-art", "isometric", "line-art", "low-poly", "modeling-compound", "neon-punk",
    "origami", "photographic", "pixel-art", "tile-texture",
)
Sampler = Literal["DDIM", "DDPM", "K_DPMPP_2M", "K_DPMPP_2S_ANCESTRAL", "K_DPM_2",
                  "K_DPM_2_ANCESTRAL", "K_EULER", "K_EULER_ANCESTRAL", "K_HEUN", "K_LMS"]
ClipPreset = Literal["FAST_BLUE", "FAST_GREEN", "NONE", "SIMPLE", "SLOW", "SLOWER", "SLOWEST"]

# The two headers the document names for the key: its example's, then its header table's.
AUTH_HEADERS = ("Authorization", "Authentication")
RULES = SizeRules(multiple=64, min_side=320, max_side=1536, preferred_area=512 * 512,
                  max_area=1536 * 1536, max_samples=1, min_steps=10, max_steps=50)

# The document's own defaults for cfg_scale and steps.
DOCUMENTED_DEFAULTS = Overrides(cfg=7.0, steps=30)
# Checked in order: "Invalid API key" is an auth failure before it is an invalid request.
_MESSAGE_CLASSES: tuple[tuple[tuple[str, ...], type[ProviderError]], ...] = (
    (("api key", "apikey", "api-key", "unauthori", "authenticat", "invalid key", "forbidden"),
     ProviderAuthError),
    (("credit", "balance", "insufficient", "recharge"), ProviderCreditsError),
    (("rate limit", "rate-limit", "too many", "too frequent", "slow down"), RateLimited),
    (("nsfw", "sensitive", "inappropriate", "moderation", "not safe", "content filter",
      "prohibited"), ContentFiltered),
    (("invalid", "must be", "required", "parameter", "between", "out of range", "too large",
      "not supported", "multiple of"), InvalidProviderRequest),
    (("busy", "maintenance", "unavailable", "overload", "try again later"), ProviderUnavailable),
)


class AIThrivingSettings(HttpProviderSettings):
    """Keys of a ``type = "aithriving"`` provider."""

    url: str = Field("https://aithriving.com", description="API host (not documented)")
    path: str = "/api/generate/basic/imageToImage"
    auth_header: str | None = Field(
        None, description="header that carries the key; unset: both Authorization and "
        "Authentication (the docs name both)")
    auth_prefix: str = Field("", description='put before the key, e.g. "Bearer "')
    sampler: Sampler | None = Field(None, description="omitted: the service picks one")
    clip_guidance_preset: ClipPreset | None = None


class AIThrivingProvider(Provider):
    """Stable Diffusion 1.6 img2img through AIThriving; failed results are not charged."""

    type_name = "aithriving"
    Settings = AIThrivingSettings
    CAPABILITIES = (Capability.STRENGTH | Capability.SEED | Capability.STEPS | Capability.CFG
                    | Capability.STYLES)
    size_rules = RULES
    styles = STYLE_PRESETS

    @property
    def conf(self) -> AIThrivingSettings:
        assert isinstance(self.settings, AIThrivingSettings)
        return self.settings

    def builtin_defaults(self, model: str | None) -> Overrides:
        return DOCUMENTED_DEFAULTS

    def _headers(self, only: str | None = None) -> dict[str, str]:
        """The key in the configured header (or ``only``), else in both documented ones."""
        names = (only,) if only else self._auth_headers()
        value = f"{self.conf.auth_prefix}{self.conf.key()}"
        return {**{name: value for name in names}, "Accept": "application/json"}

    def _auth_headers(self) -> tuple[str, ...]:
        return (self.conf.auth_header,) if self.conf.auth_header else AUTH_HEADERS

    async def _generate(self, job: ProviderJob, reporter: Reporter) -> GenerationResult:
        fields = form_fields(job, self.conf)
        image = job.image
        files = {"init_image": (f"input.{image.extension}", image.data, image.mime)}
        log.debug("aithriving %s: POST %s %sx%s", self.name, self.conf.path, fields["width"],
                  fields["height"])
        response = await send(self.http, "POST", self.conf.base_url + self.conf.path,
                              data=fields, files=files, headers=self._headers(),
                              timeout=self.conf.timeouts(), retry=self.conf.retry_policy(),
                              retry_statuses=SUBMIT_RETRY)
        if not response.is_success:
            raise http_failure(response)
        body = _object(response)
        if body is not None and body.get("code", 0) != 0:
            # A refusal on HTTP 200 (a bad key, no credits) is not a job taken; its message says.
            raise message_failure(body.get("message"), accepted=True)
        reporter.accept()
        if body is None or "code" not in body:
            raise ValueError("the answer has no code")
        data = body["data"]
        if not isinstance(data, dict):
            raise ValueError("a success without data")
        seed = data.get("seed")
        return GenerationResult(images=(decode_image(data["image"]),),
                                seed=int(seed) if seed is not None else None)

    async def health(self) -> str:
        """Dry runs, one per candidate header: a form without an image is refused, not charged."""
        accepted: list[str] = []
        answer = ""
        for header in self._auth_headers():
            try:
                answer = await self._dry_run(header)
            except ProviderAuthError:
                continue  # the other header may be the one this server reads
            accepted.append(header)
        if not accepted:
            raise ProviderAuthError()
        where = (f"the {accepted[0]} header" if len(accepted) == 1
                 else f"either header ({', '.join(accepted)})")
        return f"ok (key accepted in {where}; a request without an image got: {answer})"

    async def _dry_run(self, header: str) -> str:
        """What the service answers a form without an image when the key is only in ``header``."""
        response = await send(self.http, "POST", self.conf.base_url + self.conf.path,
                              files={"prompt": (None, "img2img-bot doctor")},
                              headers=self._headers(header), timeout=self.conf.timeouts())
        if response.status_code >= 500:
            raise http_failure(response)
        message = _message(response)
        error = classify(message)
        if isinstance(error, ProviderAuthError | ProviderCreditsError):
            raise error
        if response.status_code in (401, 403, 402):
            raise http_failure(response)
        return message or str(response.status_code)


def form_fields(job: ProviderJob, conf: AIThrivingSettings) -> dict[str, str]:
    """The form fields for a job, checked against the documented bounds."""
    params = job.params
    for side in (params.width, params.height):
        if not (RULES.min_side <= side <= RULES.max_side and side % RULES.multiple == 0):
            raise InvalidProviderRequest(msg=side_rules(RULES))
    if params.style_preset is not None and params.style_preset not in STYLE_PRESETS:
        raise InvalidProviderRequest(msg=no_style(params.style_preset))
    fields = {
        "prompt": params.prompt,
        "width": str(params.width),
        "height": str(params.height),
        "image_strength": f"{min(1.0, max(0.0, 1.0 - params.strength)):.3f}",
        "cfg_scale": str(min(35, max(0, round(params.cfg)))),
        "steps": str(min(RULES.max_steps, max(RULES.min_steps, params.steps))),
    }
    if params.seed is not None:
        fields["seed"] = str(params.seed)
    if params.style_preset is not None:
        fields["style_preset"] = params.style_preset
    if conf.sampler is not None:
        fields["sampler"] = conf.sampler
    if conf.clip_guidance_preset is not None:
        fields["clip_guidance_preset"] = conf.clip_guidance_preset
    return fields


def classify(message: str, *, accepted: bool = False) -> ProviderError | None:
    """The error a failure message stands for, or None when no rule knows it."""
    lowered = message.lower()
    for words, cls in _MESSAGE_CLASSES:
        if any(word in lowered for word in words):
            if cls is InvalidProviderRequest:
                return rejected(message)
            return cls(accepted=accepted or cls is ContentFiltered)
    return None


def message_failure(message: Any, *, accepted: bool) -> ProviderError:
    """The error for a ``code: -1`` answer; an unknown message is a failed job."""
    text = redact(str(message or "").strip())[:200]
    error = classify(text, accepted=False)
    return error if error is not None else failed_job(text, accepted=accepted)


def http_failure(response: httpx.Response) -> ProviderError:
    """The error for a non-2xx answer: the envelope's message if it says more than the status."""
    message = _message(response)
    error = classify(message) if message else None
    retry_after = parse_retry_after(response.headers.get("Retry-After"))
    if isinstance(error, RateLimited) or (error is None and response.status_code == 429):
        return RateLimited(retry_after=retry_after)
    return error or error_for_status(response.status_code, message, retry_after=retry_after)


def _object(response: httpx.Response) -> dict[str, Any] | None:
    """The JSON object of an answer, or None when it has none."""
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _message(response: httpx.Response) -> str:
    body = _object(response)
    if body is not None and isinstance(body.get("message"), str):
        return redact(body["message"].strip())[:200]
    return ""
