"""Autocomplete for ``/img2img``'s style, provider and model (Discord shows at most 25)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from typing import Any

import httpx
from discord import app_commands

from adapters.discord.state import Interaction
from bot.app import App
from bot.errors import BotError

log = logging.getLogger(__name__)
MAX_CHOICES = 25
MODELS_TTL = 300.0
MODELS_WAIT = 2.0  # Discord wants the choices within 3 s


def choices(names: Iterable[str], current: str) -> list[app_commands.Choice[str]]:
    """Names containing what the user typed, prefix matches first, at most 25."""
    typed = current.strip().lower()
    hits = [n for n in names if typed in n.lower() and 0 < len(n) <= 100]
    hits.sort(key=lambda n: (not n.lower().startswith(typed), n.lower()))
    return [app_commands.Choice(name=n, value=n) for n in hits[:MAX_CHOICES]]


class ModelLists:
    """Each provider's models, fetched at most every few minutes."""

    def __init__(self, app: App) -> None:
        self.app = app
        self._cache: dict[str, tuple[float, list[str]]] = {}

    async def get(self, provider_name: str) -> list[str]:
        provider = self.app.providers.get(provider_name)
        if provider is None:
            return []
        cached = self._cache.get(provider_name)
        if cached is not None and time.monotonic() - cached[0] < MODELS_TTL:
            return cached[1]
        try:
            models = await asyncio.wait_for(provider.list_models(), MODELS_WAIT)
        except (BotError, TimeoutError, httpx.HTTPError) as exc:
            log.info("models of %s unavailable for autocomplete: %s", provider_name,
                     type(exc).__name__)
            return cached[1] if cached else []
        self._cache[provider_name] = (time.monotonic(), models)
        return models


def register_autocomplete(command: app_commands.Command[Any, ..., Any], app: App) -> None:
    """Attach the style, provider and model suggestions to ``command``."""
    models = ModelLists(app)

    @command.autocomplete("style")
    async def style(interaction: Interaction,
                    current: str) -> list[app_commands.Choice[str]]:
        return choices(sorted(app.config.styles), current)

    @command.autocomplete("provider")
    async def provider(interaction: Interaction,
                       current: str) -> list[app_commands.Choice[str]]:
        return choices(app.providers, current)

    @command.autocomplete("model")
    async def model(interaction: Interaction,
                    current: str) -> list[app_commands.Choice[str]]:
        chosen = getattr(interaction.namespace, "provider", None) or app.config.defaults.provider
        return choices(await models.get(str(chosen)), current)
