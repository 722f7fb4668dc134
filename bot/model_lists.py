"""Each provider's models for suggestions, fetched at most every few minutes.

Suggestions must come fast (Discord wants autocomplete choices within 3 s), so a provider
that does not answer in time gives the last list it gave, or none.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping

import httpx

from bot.errors import BotError
from bot.providers.base import Provider

log = logging.getLogger(__name__)
MODELS_TTL = 300.0
MODELS_WAIT = 2.0


class ModelLists:
    """The providers' ``list_models()``, cached for ``MODELS_TTL`` seconds."""

    def __init__(self, providers: Mapping[str, Provider]) -> None:
        self.providers = providers
        self._cache: dict[str, tuple[float, list[str]]] = {}

    async def get(self, provider_name: str) -> list[str]:
        provider = self.providers.get(provider_name)
        if provider is None:
            return []
        cached = self._cache.get(provider_name)
        if cached is not None and time.monotonic() - cached[0] < MODELS_TTL:
            return cached[1]
        try:
            models = await asyncio.wait_for(provider.list_models(), MODELS_WAIT)
        except (BotError, TimeoutError, httpx.HTTPError) as exc:
            log.info("models of %s unavailable for suggestions: %s", provider_name,
                     type(exc).__name__)
            return cached[1] if cached else []
        self._cache[provider_name] = (time.monotonic(), models)
        return models
