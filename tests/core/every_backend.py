"""One configuration of every backend type (and its variants with other rules), built offline."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx

from bot.config import build_config
from bot.providers import build_providers
from bot.providers.base import Provider

URL = "http://127.0.0.1:9"  # never called: these tests read rules and defaults only
BACKENDS: dict[str, dict[str, Any]] = {
    "a1111": {"type": "a1111", "url": URL},
    "a1111-1024": {"type": "a1111", "url": URL, "preferred_side": 1024},
    "comfyui": {"type": "comfyui", "url": URL},
    "horde": {"type": "horde"},
    "kellyapi": {"type": "kellyapi", "url": URL},
    "aithriving": {"type": "aithriving", "url": URL},
    "modelslab": {"type": "modelslab"},
    "modelslab-community": {"type": "modelslab", "endpoint": "community", "model_id": "m"},
    "scenario": {"type": "scenario"},
    "stability-sd3": {"type": "stability"},
    "stability-v1": {"type": "stability", "api_version": "v1"},
    "stability-sdxl": {"type": "stability", "api_version": "v1",
                       "engine": "stable-diffusion-xl-1024-v1-0"},
    "diffusers": {"type": "diffusers"},
    "echo": {"type": "echo"},
    "pool": {"type": "pool", "members": ["scenario", "kellyapi"]},
}


@contextlib.asynccontextmanager
async def every_backend() -> AsyncIterator[dict[str, Provider]]:
    config = build_config({"defaults": {"provider": "echo"}, "providers": BACKENDS}, environ={})
    async with httpx.AsyncClient() as http:
        built = build_providers(config.provider_settings(), http)
        try:
            yield built
        finally:
            for provider in built.values():
                await provider.close()
