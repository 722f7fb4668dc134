"""What backends share at both ends of a job: bounds checked before sending, images read after."""

from __future__ import annotations

import asyncio
import base64
import logging

from bot.errors import FetchError, FetchTooLarge, InvalidProviderRequest, JobFailed, UnsafeURL
from bot.fetcher import GuardedFetcher
from bot.i18n import Msg
from bot.models import ImageData, Params, SizeRules
from bot.providers.http import RetryPolicy

log = logging.getLogger(__name__)

NOT_AN_IMAGE = Msg("error-not-an-image")


def side_rules(rules: SizeRules) -> Msg:
    """The sentence that tells which sides a service takes."""
    return Msg("error-sides", {"low": rules.min_side, "high": rules.max_side,
                               "step": rules.multiple})


def no_style(name: str) -> Msg:
    """The sentence for a style preset the service does not have."""
    return Msg("error-no-style", {"style": repr(name)})


def check_rules(params: Params, rules: SizeRules, *, steps: bool) -> None:
    """Refuse values outside the documented bounds before anything is sent or spent."""
    sides_ok = all(rules.min_side <= side <= rules.max_side and side % rules.multiple == 0
                   for side in (params.width, params.height))
    if not sides_ok:
        raise InvalidProviderRequest(msg=side_rules(rules))
    if not 1 <= params.samples <= rules.max_samples:
        raise InvalidProviderRequest(msg=Msg("error-samples-range", {"high": rules.max_samples}))
    if steps and not rules.min_steps <= params.steps <= rules.max_steps:
        raise InvalidProviderRequest(msg=Msg("error-steps-range", {"low": rules.min_steps,
                                                                   "high": rules.max_steps}))


def sniff_mime(data: bytes) -> str | None:
    """The MIME type of PNG, JPEG or WebP bytes, from their magic number."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def decode_image(answer: bytes | str) -> ImageData:
    """An image from raw bytes or base64 text (a ``data:`` URL too), typed by its first bytes.

    Anything that is not a PNG, JPEG or WebP image is a failed job: the service answered it.
    """
    if isinstance(answer, str):
        answer = answer.encode("ascii", "replace")
    if not isinstance(answer, bytes):  # a JSON value of another kind: a malformed answer
        raise TypeError("the answer holds no image")
    mime = sniff_mime(answer)
    if mime is None:
        text = answer.strip()
        if text.startswith(b"data:"):
            text = text.partition(b",")[2]
        try:
            answer = base64.b64decode(text, validate=True)
        except ValueError as exc:
            raise JobFailed(msg=NOT_AN_IMAGE, accepted=True) from exc
        mime = sniff_mime(answer)
        if mime is None:
            raise JobFailed(msg=NOT_AN_IMAGE, accepted=True)
    return ImageData(answer, mime)



async def fetch_image(fetcher: GuardedFetcher, item: str, *, attempts: int = 1) -> ImageData:
    """A finished image given inline (base64) or as a URL, fetched through the guarded fetcher.

    Result URLs are signed or public storage, not the API host: no key is sent there, and
    one pointing into a private network, redirecting there, or serving more than the result
    byte cap fails the job (refunded) at once. A download that merely failed is tried
    ``attempts`` times, as the backend's own requests are.
    """
    if not item.startswith(("https://", "http://")):
        return decode_image(item)
    retry = RetryPolicy(attempts=attempts)
    for attempt in range(attempts):
        try:
            return decode_image(await fetcher.fetch(item))
        except (UnsafeURL, FetchTooLarge) as exc:
            log.warning("a result download was refused: %s", exc)
            break
        except FetchError as exc:
            log.warning("a result download failed: %s", exc)
            if attempt + 1 < attempts:
                await asyncio.sleep(retry.delay(attempt, None))
    raise JobFailed(msg=Msg("error-result-download"), accepted=True)
