"""The registry from a config ``type`` name to its backend class.

Entries name the class by import path so that a backend's dependencies (torch for
``diffusers``) load only when an operator configures it.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping

import httpx

from bot.errors import ConfigError
from bot.fetcher import GuardedFetcher
from bot.models import ResultLimits
from bot.providers.base import Provider, ProviderSettings

PROVIDERS: dict[str, str] = {
    "a1111": "bot.providers.a1111:A1111Provider",
    "kellyapi": "bot.providers.kellyapi:KellyAPIProvider",
    "aithriving": "bot.providers.aithriving:AIThrivingProvider",
    "modelslab": "bot.providers.modelslab:ModelsLabProvider",
    "scenario": "bot.providers.scenario:ScenarioProvider",
    "stability": "bot.providers.stability:StabilityProvider",
    "comfyui": "bot.providers.comfyui:ComfyUIProvider",
    "horde": "bot.providers.horde:HordeProvider",
    "diffusers": "bot.providers.diffusers_local:DiffusersProvider",
    "pool": "bot.providers.pool:PoolProvider",
    "echo": "bot.providers.echo:EchoProvider",
}


def provider_class(type_name: str, *, key: str = "type") -> type[Provider]:
    """The class for ``type_name``; an unknown name is a ``ConfigError`` listing the known ones."""
    target = PROVIDERS.get(type_name)
    if target is None:
        known = ", ".join(sorted(PROVIDERS))
        raise ConfigError(f"{key}: unknown provider type {type_name!r} (known: {known})")
    module_name, _, class_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(
            f"{key}: provider type {type_name!r} needs a missing package ({exc.name}); "
            "see the README's backend table"
        ) from exc
    cls: type[Provider] = getattr(module, class_name)
    return cls


def build_providers(
    settings: Mapping[str, ProviderSettings], http: httpx.AsyncClient, *,
    fetcher: GuardedFetcher | None = None, result_limits: ResultLimits | None = None,
) -> dict[str, Provider]:
    """Instantiate every configured backend; pools come last so their members exist.

    ``fetcher`` and ``result_limits`` (built from the whole config) replace each backend's
    defaults, which know only the backend's own origin and the default caps.
    """
    built: dict[str, Provider] = {}
    ordered = sorted(settings.items(), key=lambda item: item[1].type == "pool")
    for name, cfg in ordered:
        cls = provider_class(cfg.type, key=f"providers.{name}.type")
        provider = cls.build(name, cfg, http, built)
        if fetcher is not None:
            provider.fetcher = fetcher
        if result_limits is not None:
            provider.result_limits = result_limits
        built[name] = provider
    return built
