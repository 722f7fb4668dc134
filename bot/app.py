"""The composition root: config → storage, HTTP client, providers, service."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import httpx

from bot.config import Config
from bot.diagnose import watch_requests
from bot.fetcher import GuardedFetcher
from bot.health import Health
from bot.models import ResultLimits
from bot.payments import Payments
from bot.preferences import Preferences
from bot.providers import build_providers
from bot.providers.base import Provider
from bot.providers.http import make_client
from bot.service import GenerationService
from storage import Storage, open_storage

if TYPE_CHECKING:  # bot.web needs aiohttp, which only ``run`` imports
    from bot.web import LateRoute


@dataclass
class App:
    config: Config
    storage: Storage
    http: httpx.AsyncClient
    providers: dict[str, Provider]
    service: GenerationService
    preferences: Preferences
    fetcher: GuardedFetcher
    payments: Payments
    health: Health = field(default_factory=Health)
    # Set when the bot's HTTP server also receives Telegram's webhook (``img2img-bot run``).
    webhook: LateRoute | None = None
    # all: receive platform events and run jobs; gateway: only receive; worker: only run jobs
    # (and deliver them through the platforms' APIs).
    role: str = "all"


def configured_origins(config: Config) -> list[str]:
    """The URLs the operator configured: the only private addresses the fetcher may reach."""
    urls = [str(url) for settings in config.provider_settings().values()
            if (url := getattr(settings, "url", None))]
    urls += [section.api_base for section in (config.telegram, config.discord) if section]
    return urls


def make_fetcher(config: Config, http: httpx.AsyncClient) -> GuardedFetcher:
    """The guarded fetcher for every URL from outside (results, attachments, files)."""
    return GuardedFetcher(http, origins=configured_origins(config),
                          max_bytes=config.limits.max_result_bytes,
                          timeout=config.limits.fetch_timeout)


@contextlib.asynccontextmanager
async def running_app(config: Config, *, start_workers: bool = True,
                      role: str = "all") -> AsyncIterator[App]:
    """Build everything, start the service (taking over what a dead process left), and tear
    down in order.

    Whatever fails, at start or later, what was built is closed again (newest first): an open
    database connection or client left behind would keep the process from exiting.
    """
    async with contextlib.AsyncExitStack() as built:
        storage = open_storage(config.storage.url)
        await storage.open()
        built.push_async_callback(storage.close)
        http = make_client()
        watch_requests(http)  # lets doctor and the start-up check name a failure's URL and status
        built.push_async_callback(http.aclose)
        fetcher = make_fetcher(config, http)
        limits = ResultLimits(config.limits.max_result_bytes, config.limits.max_result_pixels)
        providers = build_providers(config.provider_settings(), http, fetcher=fetcher,
                                    result_limits=limits)
        for provider in providers.values():
            built.push_async_callback(provider.close)
        service = GenerationService(config, storage, providers)
        built.push_async_callback(service.stop)
        if start_workers:
            await service.start(claims=role != "gateway")
        yield App(config, storage, http, providers, service, service.preferences,
                  fetcher, Payments(config.payments, storage, service.credits), role=role)
