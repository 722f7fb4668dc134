"""Per-backend defaults: above ``[defaults]``, under the chat's and the user's, per model family.

Driven through the service against the fake Scenario API, so the numbers checked are the ones
that went over the wire.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.app import App, running_app
from bot.config import build_config
from bot.errors import ConfigError
from bot.events import Done
from bot.jobs import GenerationRequest
from bot.models import ChatRef, UserRef
from bot.options import Overrides
from tests.core.every_backend import BACKENDS, every_backend
from tests.fakes.scenario import FakeScenario
from tests.fakes.server import jpeg_bytes

KEY, SECRET = "scenario-key-0123456789", "scenario-secret-0123456789"
ALICE = UserRef("telegram", "1")
GROUP = ChatRef("telegram", "-100")


@pytest.fixture
async def fake() -> AsyncIterator[FakeScenario]:
    async with FakeScenario(KEY, SECRET) as server:
        yield server


def config(tmp_path: Path, fake: FakeScenario, **scenario: Any) -> dict[str, Any]:
    return {
        "storage": {"url": f"sqlite:///{tmp_path / 'bot.db'}"},
        "defaults": {"provider": "flux", "cfg": 7.0, "steps": 25},
        "providers": {
            "flux": {"type": "scenario", "url": f"{fake.base_url}/v1", "api_key": KEY,
                     "api_secret": SECRET, "poll_interval": 0.02, **scenario},
            "sdxl": {"type": "scenario", "url": f"{fake.base_url}/v1", "api_key": KEY,
                     "api_secret": SECRET, "poll_interval": 0.02, "model_id": "my-sdxl-model"},
        },
    }


async def sent(app: App, fake: FakeScenario,
               overrides: Overrides | None = None) -> tuple[float, int]:
    """(guidance, steps) the backend received for one request in the group."""
    handle = await app.service.submit(GenerationRequest(
        user=ALICE, chat=GROUP, image=jpeg_bytes((512, 512)), prompt="a fox",
        overrides=overrides or Overrides()))
    assert isinstance(await handle.wait(), Done)
    body = fake.generations[-1]
    return body["guidance"], body["numInferenceSteps"]


async def test_builtin_defaults_follow_the_model_family(tmp_path: Path,
                                                       fake: FakeScenario) -> None:
    async with running_app(build_config(config(tmp_path, fake), environ={})) as app:
        assert await sent(app, fake) == (3.5, 28)  # Flux, not the global cfg 7
        assert await sent(app, fake, Overrides(provider="sdxl")) == (6.0, 30)
        assert await sent(app, fake, Overrides(model="flux.1-pro")) == (3.0, 28)


async def test_configured_defaults_sit_under_the_chat_and_the_user(tmp_path: Path,
                                                                  fake: FakeScenario) -> None:
    raw = config(tmp_path, fake, defaults={"cfg": 2.5, "steps": 20})
    async with running_app(build_config(raw, environ={})) as app:
        assert await sent(app, fake) == (2.5, 20)
        await app.service.preferences.set_chat(GROUP, "cfg", "4")
        assert await sent(app, fake) == (4.0, 20)
        await app.service.preferences.set_user(ALICE, "cfg", "5")
        assert await sent(app, fake) == (5.0, 20)
        assert await sent(app, fake, Overrides(cfg=6.5, steps=12)) == (6.5, 12)


def test_a_bad_defaults_table_names_its_key(tmp_path: Path) -> None:
    raw = {"defaults": {"provider": "flux"},
           "providers": {"flux": {"type": "scenario", "defaults": {"cfg": 50}}}}
    with pytest.raises(ConfigError, match=r"providers\.flux\.defaults\.cfg"):
        build_config(raw, environ={})
    raw["providers"]["flux"]["defaults"] = {"guidance": 3}
    with pytest.raises(ConfigError, match=r"providers\.flux\.defaults\.guidance"):
        build_config(raw, environ={})


# (cfg, steps) each backend starts from when no layer above says otherwise; None = [defaults].
BUILTIN: dict[str, tuple[float | None, int | None]] = {
    "a1111": (None, None), "a1111-1024": (None, None), "comfyui": (None, None),
    "horde": (None, None), "kellyapi": (None, None), "echo": (None, None),
    "aithriving": (7.0, 30), "stability-v1": (7.0, 30), "stability-sdxl": (7.0, 30),
    "stability-sd3": (None, None), "modelslab": (None, None), "modelslab-community": (7.5, 20),
    "scenario": (3.5, 28), "diffusers": (0.0, 4), "pool": (3.5, 28),
}


async def test_every_backend_declares_its_builtin_defaults() -> None:
    assert set(BUILTIN) == set(BACKENDS)
    async with every_backend() as providers:
        for name, provider in providers.items():
            layer = provider.defaults_for(None)
            assert (layer.cfg, layer.steps) == BUILTIN[name], name
            rules = provider.rules
            assert layer.steps is None or rules.min_steps <= layer.steps <= rules.max_steps, name
