"""KellyAPI (api.kellyai.pro): one blocking JSON ``POST image/edit`` with the image as base64.

The API has no strength, seed or steps for img2img, so the capability flags leave them out and
the core tells the user when they asked for them. The model lists (``sd/models`` and
``sdxl/models``) serve ``doctor``; ``image/edit`` takes no model.
"""

from __future__ import annotations

import base64
import logging
from typing import Any

import httpx
from pydantic import Field

from bot.errors import ContentFiltered, ProviderCreditsError, ProviderError
from bot.models import Capability, GenerationResult, ProviderJob, SizeRules
from bot.providers.base import HttpProviderSettings, Provider, Reporter
from bot.providers.http import error_for_status, failed_job, parse_retry_after, send
from bot.providers.results import decode_image
from bot.redact import redact

log = logging.getLogger(__name__)

# A generation is repeated only on answers that mean it was not started (no double charge).
SUBMIT_RETRY = frozenset({429, 503})
_NSFW_WORDS = ("nsfw", "explicit", "inappropriate", "unsafe", "content filter")
_CREDIT_WORDS = ("credit", "balance", "quota", "subscription")


class KellyAPISettings(HttpProviderSettings):
    """Keys of a ``type = "kellyapi"`` provider."""

    url: str = "https://api.kellyai.pro/"
    auth_header: str = Field(
        "Authorization", description="old servers: X-Kelly-KEY (0.0.1) or Kelly-API-KEY (0.0.2)"
    )
    auth_prefix: str = Field("Bearer ", description="put before the key; empty for old servers")
    default_negative_prompt: str = Field(
        "", description="sent when the request has no negative prompt"
    )
    request_timeout: float = Field(60.0, gt=0)


class KellyAPIProvider(Provider):
    """Image editing through KellyAPI; the key comes from the Telegram bot @KellyAIBot."""

    type_name = "kellyapi"
    Settings = KellyAPISettings
    CAPABILITIES = Capability.NEGATIVE_PROMPT
    size_rules = SizeRules(multiple=64, min_side=512, max_side=1536, preferred_area=1024 * 1024,
                           max_area=1536 * 1536, max_samples=1, min_steps=1, max_steps=150)

    @property
    def conf(self) -> KellyAPISettings:
        assert isinstance(self.settings, KellyAPISettings)
        return self.settings

    def _url(self, path: str) -> str:
        return f"{self.conf.base_url}/{path}"

    def _headers(self) -> dict[str, str]:
        return {self.conf.auth_header: f"{self.conf.auth_prefix}{self.conf.key()}",
                "Accept": "application/json"}

    async def _generate(self, job: ProviderJob, reporter: Reporter) -> GenerationResult:
        params = job.params
        body = {
            "prompt": params.prompt,
            "negative_prompt": params.negative_prompt or self.conf.default_negative_prompt,
            "image_data": base64.b64encode(job.image.data).decode("ascii"),
            "width": params.width,
            "height": params.height,
            "responseType": "base64data",
        }
        log.debug("kellyapi %s: POST image/edit %dx%d", self.name, params.width, params.height)
        response = await send(self.http, "POST", self._url("image/edit"), json=body,
                              headers=self._headers(), timeout=self.conf.timeouts(),
                              retry=self.conf.retry_policy(), retry_statuses=SUBMIT_RETRY)
        _raise_for(response)
        reporter.accept()
        content = response.json()
        if not isinstance(content, dict):
            raise ValueError("the answer is not a JSON object")
        if "image" not in content and "detail" in content:
            raise _failure(detail_text(content["detail"]), response.status_code, accepted=True)
        return GenerationResult(images=(decode_image(content["image"]),), seed=None)

    async def health(self) -> str:
        models = await self.list_models()
        return f"ok ({len(models)} models listed)"

    async def list_models(self) -> list[str]:
        names: list[str] = []
        for path in ("sd/models", "sdxl/models"):
            response = await send(self.http, "GET", self._url(path), headers=self._headers(),
                                  timeout=self.conf.timeouts(), retry=self.conf.retry_policy())
            _raise_for(response)
            names.extend(n for n in model_names(response.json()) if n not in names)
        return names


def model_names(body: Any) -> list[str]:
    """Names from a model list: a JSON list or ``{"models": [...]}``, of strings or objects."""
    items = body.get("models", []) if isinstance(body, dict) else body
    if not isinstance(items, list):
        raise ValueError("the model list is not a list")
    names = []
    for item in items:
        if isinstance(item, dict):
            item = item.get("name") or item.get("id") or item.get("model")
        if isinstance(item, str) and item:
            names.append(item)
    return names


def detail_text(detail: Any) -> str:
    """FastAPI's ``detail``: a string, or a list of ``{loc, msg}`` validation errors."""
    if isinstance(detail, list):
        parts = []
        for item in detail[:3]:
            if isinstance(item, dict):
                loc = ".".join(str(p) for p in item.get("loc", ()) if p != "body")
                msg = str(item.get("msg", ""))
                parts.append(f"{loc}: {msg}" if loc else msg)
            else:
                parts.append(str(item))
        text = "; ".join(parts)
    else:
        text = str(detail)
    return redact(text.strip())[:300]


def _failure(
    detail: str, status: int, *, accepted: bool, retry_after: float | None = None
) -> ProviderError:
    lowered = detail.lower()
    if any(word in lowered for word in _NSFW_WORDS):
        return ContentFiltered(accepted=True)
    if status in (400, 402, 403) and any(word in lowered for word in _CREDIT_WORDS):
        return ProviderCreditsError()
    if 200 <= status < 300:
        return failed_job(detail, accepted=accepted)
    return error_for_status(status, detail, retry_after=retry_after, accepted=accepted)


def _raise_for(response: httpx.Response) -> None:
    if response.is_success:
        return
    detail = ""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and "detail" in body:
        detail = detail_text(body["detail"])
    raise _failure(detail, response.status_code, accepted=False,
                   retry_after=parse_retry_after(response.headers.get("Retry-After")))
