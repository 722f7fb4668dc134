"""Why a part does not answer, in operator terms: the URL, the HTTP status or the connection
error, and the remedy where one is known. ``doctor`` and the start-up check print these.
"""

from __future__ import annotations

import asyncio
import contextvars
import errno
import ipaddress
from dataclasses import asdict, dataclass
from typing import Any

import httpx

from bot.errors import (
    BotError,
    ProviderAuthError,
    ProviderCreditsError,
    ProviderTimeout,
    RateLimited,
)
from bot.providers.base import HttpProviderSettings, Provider, env_name
from bot.redact import redact

CHECK_TIMEOUT = 30.0


@dataclass(frozen=True, slots=True)
class Check:
    """One part's answer: ``ok``, what it said or why not, and what to do about it."""

    part: str
    ok: bool
    summary: str
    url: str | None = None
    cause: str | None = None
    remedy: str | None = None

    def line(self) -> str:
        if self.ok:
            return f"{self.part}: {self.summary}"
        where = f" at {self.url}" if self.url else ""
        remedy = f"; {self.remedy}" if self.remedy else ""
        return f"{self.part}: FAILED - {self.cause}{where}{remedy}"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def public_url(url: str | httpx.URL) -> str:
    """``url`` without user, password or query (where keys sometimes travel)."""
    parsed = httpx.URL(str(url))
    return redact(str(parsed.copy_with(username=None, password=None, query=None,
                                       fragment=None)))


@dataclass
class _Seen:
    url: str | None = None
    status: int | None = None
    reason: str = ""


_seen: contextvars.ContextVar[_Seen | None] = contextvars.ContextVar("diagnose_seen",
                                                                     default=None)


async def _on_request(request: httpx.Request) -> None:
    seen = _seen.get()
    if seen is not None:
        seen.url, seen.status = public_url(request.url), None


async def _on_response(response: httpx.Response) -> None:
    seen = _seen.get()
    if seen is not None:
        seen.status, seen.reason = response.status_code, response.reason_phrase


def watch_requests(client: httpx.AsyncClient) -> None:
    """Let checks see the last request and status (a no-op outside a check)."""
    if _on_request not in client.event_hooks["request"]:
        client.event_hooks["request"].append(_on_request)
        client.event_hooks["response"].append(_on_response)


def _transport_error(exc: BaseException) -> httpx.TransportError | None:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, httpx.TransportError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def _self_hosted(url: str | None) -> bool:
    """Whether ``url`` points at this machine, a private network or a container name."""
    host = httpx.URL(url).host if url else ""
    if host == "localhost" or "." not in host:
        return True
    try:
        return ipaddress.ip_address(host).is_private
    except ValueError:
        return False


def _connection_cause(error: httpx.TransportError, url: str | None) -> tuple[str, str]:
    text = str(error) or type(error).__name__
    low = text.lower()
    if isinstance(error, httpx.TimeoutException):
        return (f"no answer in time ({type(error).__name__})",
                "check url and any firewall between the bot and the server")
    refused = "refused" in low or f"errno {errno.ECONNREFUSED}" in low
    if refused or "all connection attempts failed" in low:
        remedy = ("start the service, or fix url if it listens elsewhere" if _self_hosted(url)
                  else "check the network between the bot and that host (firewall, proxy)")
        return f"connection refused ({text})", remedy
    if "name or service not known" in low or "nodename" in low or "getaddrinfo" in low:
        return f"host not found ({text})", "check the host name in url"
    return f"connection error ({text})", "check url and the network"


def _remedy_for(provider: Provider, error: BaseException, status: int | None) -> str:
    settings = provider.settings
    if isinstance(error, ProviderAuthError) or status in (401, 403):
        if hasattr(settings, "password"):
            variable = getattr(settings, "password_env", None) or env_name(provider.name,
                                                                           "PASSWORD")
            return (f"check username and password in [providers.{provider.name}] "
                    f"(or ${variable})")
        if isinstance(settings, HttpProviderSettings):
            variable = settings.api_key_env or env_name(provider.name, "API_KEY")
            return f"check the key: api_key in [providers.{provider.name}] or ${variable}"
        return "check the credentials"
    if isinstance(error, ProviderCreditsError) or status == 402:
        return "top up the account at the provider"
    if isinstance(error, RateLimited) or status == 429:
        return "the provider is rate limiting; try again later"
    if isinstance(error, ProviderTimeout):
        return "the server is slow or unreachable; check url, or raise request_timeout"
    if status == 404:
        return "check url: that path does not exist on the server (wrong port or service?)"
    if status is not None and status >= 500:
        return "the service itself is failing; see its own logs"
    return ""


async def check_provider(provider: Provider, timeout: float = CHECK_TIMEOUT) -> Check:
    """Run the provider's free health check and explain a failure."""
    part = f"provider {provider.name} ({provider.settings.type})"
    configured = getattr(provider.settings, "url", None)
    seen = _Seen()
    token = _seen.set(seen)
    try:
        status_line = await asyncio.wait_for(provider.health(), timeout)
    except (BotError, TimeoutError, httpx.HTTPError) as exc:
        url = seen.url or (public_url(configured) if isinstance(configured, str) else None)
        transport = _transport_error(exc)
        if transport is not None:
            cause, remedy = _connection_cause(transport, url)
        elif isinstance(exc, TimeoutError):
            cause, remedy = (f"no answer in {timeout:.0f} s",
                             "check url and any firewall between the bot and the server")
        elif seen.status is not None and seen.status >= 400:
            cause = f"HTTP {seen.status} {seen.reason}".strip()
            message = exc.user_message if isinstance(exc, BotError) else ""
            cause += f" ({message})" if message else ""
            remedy = _remedy_for(provider, exc, seen.status)
        else:
            cause = exc.user_message if isinstance(exc, BotError) else type(exc).__name__
            remedy = _remedy_for(provider, exc, None)
        return Check(part, False, "not answering", url=url, cause=redact(cause),
                     remedy=remedy or None)
    finally:
        _seen.reset(token)
    return Check(part, True, redact(status_line),
                 url=public_url(configured) if isinstance(configured, str) else None)
