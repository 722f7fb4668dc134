"""The shared HTTP layer: one retry policy and one mapping of HTTP failures onto the errors."""

from __future__ import annotations

import asyncio
import email.utils
import json
import random
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import httpx

from bot.errors import (
    InvalidProviderRequest,
    JobFailed,
    ProviderAuthError,
    ProviderCreditsError,
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimited,
)
from bot.i18n import Msg
from bot.redact import redact

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Bounded attempts with exponential backoff and full jitter; Retry-After wins when sent."""

    attempts: int = 3
    base_delay: float = 0.5
    max_delay: float = 20.0

    def delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_delay)
        return random.uniform(0, min(self.max_delay, self.base_delay * 2**attempt))


def make_client(*, connect_timeout: float = 10.0, read_timeout: float = 120.0) -> httpx.AsyncClient:
    """The one client every backend shares (connection pooling, sane timeouts)."""
    timeout = httpx.Timeout(read_timeout, connect=connect_timeout)
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=20)
    return httpx.AsyncClient(timeout=timeout, limits=limits, follow_redirects=True,
                             headers={"User-Agent": "img2img-bot/0.1"})


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


async def send(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    retry: RetryPolicy = RetryPolicy(),
    retry_statuses: Iterable[int] = RETRY_STATUSES,
    **kwargs: Any,
) -> httpx.Response:
    """Send a request, retrying 429/5xx and failed connects; the last response is returned as is.

    A connection that failed before the request was written is retried; one that broke after
    (the server may be working on it) is not, so a job is never sent twice by accident.
    """
    statuses = frozenset(retry_statuses)
    last_exc: Exception | None = None
    for attempt in range(retry.attempts):
        try:
            response = await client.request(method, url, **kwargs)
        except NOT_SENT as exc:
            # Nothing reached the server, so trying again cannot repeat the work.
            last_exc = exc
            if attempt + 1 < retry.attempts:
                await asyncio.sleep(retry.delay(attempt, None))
                continue
            raise ProviderUnavailable() from exc
        except httpx.TimeoutException as exc:
            raise ProviderTimeout() from exc
        except httpx.TransportError as exc:
            raise ProviderUnavailable() from exc
        if response.status_code in statuses and attempt + 1 < retry.attempts:
            await response.aread()
            await asyncio.sleep(retry.delay(attempt, retry_after_of(response)))
            continue
        return response
    raise ProviderUnavailable() from last_exc  # pragma: no cover - loop always returns or raises


def retry_after_of(response: httpx.Response) -> float | None:
    """Seconds the service asks us to wait: its Retry-After header, else a body field."""
    seconds = parse_retry_after(response.headers.get("Retry-After"))
    return seconds if seconds is not None else body_retry_after(response)


def body_retry_after(response: httpx.Response) -> float | None:
    """A ``retry_after`` field some providers put in the JSON body instead of the header."""
    try:
        body = response.json()
    except (ValueError, UnicodeDecodeError):
        return None
    if isinstance(body, dict):
        for key in ("retry_after", "retryAfter"):
            value = body.get(key)
            if isinstance(value, int | float):
                return float(value)
    return None


def json_body(response: httpx.Response) -> Any:
    """Parse JSON or fail as a malformed answer (never a crash)."""
    try:
        return response.json()
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProviderUnavailable(msg=Msg("error-answer-unreadable")) from exc


def error_detail(response: httpx.Response) -> str:
    """The most useful human text in an error body, trimmed and with secrets removed."""
    text = ""
    try:
        body = response.json()
    except (ValueError, UnicodeDecodeError):
        body = None
    if isinstance(body, dict):
        for key in ("message", "detail", "error", "errors", "messege"):
            value = body.get(key)
            if value:
                text = value if isinstance(value, str) else json.dumps(value)[:300]
                break
    elif isinstance(body, str):
        text = body
    if not text and not response.headers.get("content-type", "").startswith("text/html"):
        text = response.text[:300]
    return redact(text.strip())[:300]


def failed_job(reason: str = "", *, accepted: bool = True) -> JobFailed:
    """The error for a job the service could not finish, quoting its reason when it gave one."""
    reason = reason.strip().rstrip(".")
    # The reason is the service's own words: a parameter, shown as it came, not translated.
    msg = Msg("error-job-failed-reason", {"reason": reason}) if reason else None
    return JobFailed(msg=msg, accepted=accepted)


def rejected(detail: str, *, accepted: bool = False) -> InvalidProviderRequest:
    """The service refused the settings, quoting its words (a parameter, not translated)."""
    detail = detail.strip().rstrip(".")
    msg = Msg("error-invalid-request-reason", {"reason": detail}) if detail else None
    return InvalidProviderRequest(msg=msg, accepted=accepted)


def error_for_status(
    status: int, detail: str = "", *, retry_after: float | None = None, accepted: bool = False
) -> ProviderError:
    """The error-tree exception for an HTTP status (without raising it).

    A 4xx about a job the service had already accepted (a poll answered 404, say) is a failed
    job: the settings were taken, so "rejected these settings" would mislead.
    """
    if status in (401, 403):
        return ProviderAuthError(accepted=accepted)
    if status == 402:
        return ProviderCreditsError(accepted=accepted)
    if status == 429:
        return RateLimited(retry_after=retry_after, accepted=accepted)
    if status in (408, 504):
        return ProviderTimeout(accepted=accepted)
    if 400 <= status < 500 and accepted:
        return failed_job(detail)
    if 400 <= status < 500:
        return rejected(detail, accepted=accepted)
    return ProviderUnavailable(accepted=accepted)


def raise_for_status(response: httpx.Response, *, accepted: bool = False) -> None:
    """Raise the mapped error for a non-2xx response."""
    if response.is_success:
        return
    retry_after = parse_retry_after(response.headers.get("Retry-After"))
    if retry_after is None and response.status_code == 429:
        retry_after = body_retry_after(response)
    raise error_for_status(
        response.status_code, error_detail(response), retry_after=retry_after, accepted=accepted
    )
