"""No request to any backend carries the Telegram bot token or a Telegram file URL.

The real Telegram flow runs (photo downloaded through the fake Bot API, whose file URLs contain
the token) against several backends; every request the shared HTTP client sends is recorded
with its URL, headers and body (apart from the downloads from the Bot API itself).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.fakes.a1111 import FakeA1111
from tests.fakes.kellyapi import FakeKellyAPI
from tests.fakes.modelslab import FakeModelsLab
from tests.fakes.stability import FakeStability
from tests.fakes.telegram_api import TOKEN, FakeTelegram
from tests.telegram.conftest import USER_ID, make_settings, start_telegram


@pytest.fixture
async def backends() -> AsyncIterator[tuple[FakeKellyAPI, FakeModelsLab, FakeStability]]:
    async with FakeKellyAPI() as kelly, FakeModelsLab() as lab, FakeStability() as stab:
        yield kelly, lab, stab


async def test_providers_never_see_the_token_or_a_file_url(
    tmp_path: Path, fake: FakeTelegram, a1111: FakeA1111,
    backends: tuple[FakeKellyAPI, FakeModelsLab, FakeStability],
) -> None:
    kelly, lab, stab = backends
    settings = make_settings(tmp_path, fake, a1111, providers={
        "kelly": {"type": "kellyapi", "url": kelly.base_url, "api_key": "kelly-test-key"},
        "lab": {"type": "modelslab", "url": f"{lab.base_url}/api",
                "api_key": "ml-test-key-0123456789", "poll_interval": 0.05},
        "stab": {"type": "stability", "url": stab.base_url, "api_key": "sk-test-key"},
    })
    sent: list[str] = []

    async def record(request: httpx.Request) -> None:
        if str(request.url).startswith(fake.base_url):
            return  # the photo's own download from the Bot API (its URL holds the token)
        body = await request.aread()
        sent.append(f"{request.url} {dict(request.headers)} {body!r}")

    async with start_telegram(fake, a1111, settings) as tg:
        tg.app.http.event_hooks["request"].append(record)
        for provider in ("webui", "kelly", "lab", "stab"):
            update = tg.send(fake.build.photo(caption=f"/img2img a fox --provider {provider}"))
            await tg.result(update, timeout=10)
        assert fake.downloads, "the photos were downloaded from the fake Bot API"
        assert await tg.app.storage.balance(f"telegram:{USER_ID}") == 10 - 4
    assert len(sent) >= 4
    token_parts = [TOKEN, TOKEN.split(":")[1], f"bot{TOKEN}"]
    for line in sent:
        assert "/file/bot" not in line
        assert not any(part in line for part in token_parts), line
        assert fake.base_url not in line
