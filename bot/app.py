"""The composition root: config → storage, HTTP client, providers, service."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx

from bot.config import Config
from bot.preferences import Preferences
from bot.providers import build_providers
from bot.providers.base import Provider
from bot.providers.http import make_client
from bot.service import GenerationService
from storage import Storage, open_storage
from storage.base import JobRecord


@dataclass
class App:
    config: Config
    storage: Storage
    http: httpx.AsyncClient
    providers: dict[str, Provider]
    service: GenerationService
    preferences: Preferences
    interrupted: list[JobRecord]


@contextlib.asynccontextmanager
async def running_app(config: Config, *, start_workers: bool = True) -> AsyncIterator[App]:
    """Build everything, start the service (repairing a crash), and tear down in order."""
    storage = open_storage(config.storage.url)
    await storage.open()
    http = make_client()
    providers = build_providers(config.provider_settings(), http)
    service = GenerationService(config, storage, providers)
    try:
        interrupted = await service.start() if start_workers else []
        yield App(config, storage, http, providers, service, service.preferences, interrupted)
    finally:
        await service.stop()
        for provider in providers.values():
            await provider.close()
        await http.aclose()
        await storage.close()
