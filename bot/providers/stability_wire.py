"""What Stability's v1 and v2beta APIs share on the wire: errors, finish reasons, image bodies."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from bot.errors import (
    ContentFiltered,
    InvalidProviderRequest,
    JobFailed,
    ProviderCreditsError,
    ProviderError,
)
from bot.i18n import Msg
from bot.models import ImageData
from bot.providers.http import error_for_status, parse_retry_after
from bot.providers.results import decode_image
from bot.redact import redact

STYLE_PRESETS = (
    "3d-model", "analog-film", "anime", "cinematic", "comic-book", "digital-art", "enhance",
    "fantasy-art", "isometric", "line-art", "low-poly", "modeling-compound", "neon-punk",
    "origami", "photographic", "pixel-art", "tile-texture",
)
# Names of refusals by the safety system: the prompt (v1) or the request (v2beta).
_MODERATION_NAMES = frozenset({"content_moderation", "invalid_prompts"})


@dataclass(frozen=True, slots=True)
class Outcome:
    """The usable images of an answer, the seed of the first, and how many were filtered."""

    images: tuple[ImageData, ...]
    seed: int | None
    filtered: int = 0


def failure(response: httpx.Response) -> ProviderError:
    """The error for a non-2xx answer: ``{id, name, message}`` (v1) or ``{id, name, errors}``."""
    name, detail = _error_body(response)
    status = response.status_code
    if name in _MODERATION_NAMES:
        # The safety system judged it: another backend of a pool must not be tried instead.
        return ContentFiltered(accepted=True)
    if status == 402 or "insufficient" in name or "balance" in name:
        return ProviderCreditsError()
    if status == 413:
        return InvalidProviderRequest(msg=Msg("error-image-too-large-remote"))
    if status == 404:
        # ``detail`` is the service's own words: a parameter, not translated.
        return InvalidProviderRequest(msg=Msg("error-no-engine", {"reason": detail.rstrip(".")}))
    retry_after = parse_retry_after(response.headers.get("Retry-After"))
    return error_for_status(status, detail, retry_after=retry_after)


def _error_body(response: httpx.Response) -> tuple[str, str]:
    try:
        body = response.json()
    except ValueError:
        return "", ""
    if not isinstance(body, dict):
        return "", ""
    name = str(body.get("name") or "").lower()
    detail = body.get("message") or body.get("errors") or ""
    if isinstance(detail, list):
        detail = "; ".join(str(item) for item in detail[:3])
    return name, redact(str(detail).strip())[:300]


def finish(images: list[tuple[ImageData, int | None, str]]) -> Outcome:
    """Keep the SUCCESS images; all filtered is ``ContentFiltered``, none at all ``JobFailed``."""
    kept = [(image, seed) for image, seed, reason in images if reason == "SUCCESS"]
    filtered = sum(1 for _, _, reason in images if reason == "CONTENT_FILTERED")
    if not kept and filtered:
        raise ContentFiltered(accepted=True)
    if not kept:
        raise JobFailed(accepted=True)
    return Outcome(tuple(image for image, _ in kept), kept[0][1], filtered)


def image_answer(response: httpx.Response) -> Outcome | None:
    """The outcome of an answer whose body is the image itself, or None for a JSON answer."""
    if not response.headers.get("content-type", "").startswith("image/"):
        return None
    # httpx headers ignore case: v1 sends Finish-Reason and Seed, v2beta finish-reason and seed.
    reason = response.headers.get("finish-reason", "SUCCESS")
    seed = optional_seed(response.headers.get("seed"))
    return finish([(decode_image(response.content), seed, reason)])


def optional_seed(value: Any) -> int | None:
    """A seed from a JSON number or a header string."""
    return None if value is None or value == "" else int(value)
