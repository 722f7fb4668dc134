"""Hostile results: what a backend hands back is fetched and decoded as if an attacker wrote it.

A result URL into the operator's network (directly, or behind a redirect) is refused before any
request reaches it; a body of 600 MB is stopped at the byte cap in a real ``img2img-bot
transform`` process whose peak RSS stays small; a valid 50,000 x 50,000 PNG is refused before
the job counts as generated. Each of these fails the job, refunds it, and tells the user.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.app import App, running_app
from bot.config import build_config
from bot.events import Done, Failed
from bot.jobs import GenerationRequest
from bot.models import ChatRef, UserRef
from bot.presenter import failure_text
from tests.fakes.a1111 import FakeA1111
from tests.fakes.horde import FakeHorde
from tests.fakes.server import InternalServer, RedirectServer, png_bytes
from tests.fakes.telegram_api import FakeTelegram
from tests.reliability.corpus import png_complete_bomb
from tests.telegram.conftest import USER_ID, make_settings, start_telegram
from tests.texts import en, head

ROOT = Path(__file__).resolve().parents[2]
INITIAL = 10
USER = UserRef("telegram", "42")


@pytest.fixture
async def internal() -> AsyncIterator[InternalServer]:
    async with InternalServer() as server:
        yield server


@pytest.fixture
async def horde() -> AsyncIterator[FakeHorde]:
    async with FakeHorde() as server:
        yield server


def horde_settings(tmp_path: Path, horde: FakeHorde) -> dict[str, Any]:
    return {
        "storage": {"url": f"sqlite:///{tmp_path / 'bot.db'}"},
        "credits": {"initial": INITIAL, "daily_free": 0},
        "defaults": {"provider": "horde"},
        "providers": {"horde": {"type": "horde", "url": horde.api_url, "cost": 1,
                                "poll_interval": 0.01, "retries": 1, "timeout": 20,
                                "contact": "ops@example.org"}},
    }


@pytest.fixture
async def horde_app(tmp_path: Path, horde: FakeHorde) -> AsyncIterator[App]:
    async with running_app(build_config(horde_settings(tmp_path, horde), environ={})) as app:
        yield app


async def run_one(app: App) -> Done | Failed:
    handle = await app.service.submit(GenerationRequest(
        user=USER, chat=ChatRef("telegram", "42", private=True), image=png_bytes((512, 512)),
        prompt="a watercolor painting"))
    final = await handle.wait()
    assert isinstance(final, Done | Failed)
    return final


async def assert_refunded(app: App, final: Done | Failed) -> None:
    assert isinstance(final, Failed), final
    assert final.refunded
    assert failure_text(final) == en("failure-refunded-balance", message=final.error.user_message,
                                     balance=INITIAL)
    assert await app.storage.balance(USER.key) == INITIAL
    assert await app.storage.drift() == []


@pytest.mark.parametrize("route", ["direct", "302 on the backend's own host",
                                   "302 on another host"])
async def test_a_result_url_into_the_network_is_never_requested(
        route: str, horde: FakeHorde, horde_app: App, internal: InternalServer) -> None:
    secret = f"{internal.base_url}/secret.png"
    async with RedirectServer(secret) as hop:
        if route == "direct":
            horde.result_url = secret
        elif route == "302 on the backend's own host":
            horde.r2_redirect = secret  # the configured origin itself sends the bot inside
        else:
            horde.result_url = f"{hop.base_url}/r2/picture.webp"

        final = await run_one(horde_app)

        await assert_refunded(horde_app, final)
        assert final.error.user_message == en("error-result-download")
        assert internal.requests == []  # its access log: nothing ever reached it
        assert hop.requests == []  # 127.0.0.1 on a port nobody configured is inside too
    if route == "302 on the backend's own host":
        assert len(horde.r2_headers) == 1  # the configured origin was asked, once


async def test_the_backends_own_origin_still_serves_its_results(horde_app: App) -> None:
    final = await run_one(horde_app)
    assert isinstance(final, Done), final
    assert await horde_app.storage.balance(USER.key) == INITIAL - 1


async def test_a_600_mb_result_is_cut_at_the_cap_in_a_small_process(
        tmp_path: Path, horde: FakeHorde) -> None:
    horde.r2_stream_bytes = 600 * 1024 * 1024
    settings = horde_settings(tmp_path, horde)
    config = tmp_path / "bot.toml"
    config.write_text(_toml(settings), encoding="utf-8")
    photo = tmp_path / "in.png"
    photo.write_bytes(png_bytes((512, 512)))
    rss_file = tmp_path / "rss"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.reliability.peak_rss", str(rss_file), sys.executable, "-m",
        "bot", "--config", str(config), "transform", str(photo), "a watercolor painting",
        "-o", str(tmp_path / "out.png"), "--user", USER.key, cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    _, stderr = await asyncio.wait_for(proc.communicate(), 60)
    text = stderr.decode()
    assert proc.returncode == 1, text
    told = en("failure-refunded", message=en("error-result-download"))
    assert f"error: {told.removesuffix('.')}" in text
    assert "larger than the 50 MB limit" in text  # the log says why: the cap, not a failure
    peak_mb = int(rss_file.read_text()) / 1024
    print(f"peak RSS of the transform process: {peak_mb:.0f} MB")
    assert peak_mb < 300
    assert not (tmp_path / "out.png").exists()
    shown = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "--config", str(config), "credits", "show", USER.key,
        "--json", cwd=ROOT, stdout=asyncio.subprocess.PIPE)
    out, _ = await asyncio.wait_for(shown.communicate(), 30)
    assert json.loads(out)["balance"] == INITIAL


async def test_a_50000_by_50000_png_result_is_refused_and_the_status_says_so(
        tmp_path: Path) -> None:
    bomb = await asyncio.to_thread(png_complete_bomb, 50_000, 50_000)
    assert len(bomb) < 1024 * 1024  # a small file: only the header tells what it is
    async with FakeTelegram(username="img2img_test_bot") as fake, \
            FakeA1111(delay=0.05) as a1111:
        fake.add_chat(USER_ID)
        a1111.result_bytes = bomb
        reasons = (head("error-result-too-many-pixels", width="50000", height="50000"),
                   en("error-result-bomb"))
        async with start_telegram(fake, a1111, make_settings(tmp_path, fake, a1111)) as tg:
            request = tg.send(fake.build.photo(caption="/img2img a cat"))
            status = await fake.wait_for(lambda: next(
                (m for m in fake.messages(USER_ID)
                 if m.reply_to_message_id == request["message"]["message_id"]
                 and any(reason in (m.text or "") for reason in reasons)), None), 15,
                what="the status message to tell the user")
            await tg.settled()
            assert "refunded" in (status.text or "")
            assert not any(m.kind in ("photo", "document") for m in fake.messages(USER_ID)
                           if m.reply_to_message_id == request["message"]["message_id"])
            assert await tg.balance() == 10
            assert await tg.ledger() == [("initial", 10), ("reserve", -1), ("refund", 1)]


def _toml(settings: dict[str, Any]) -> str:
    """The settings dict as a TOML file (flat tables, strings and numbers only)."""
    lines: list[str] = []

    def table(name: str, values: dict[str, Any]) -> None:
        lines.append(f"[{name}]")
        nested = {k: v for k, v in values.items() if isinstance(v, dict)}
        lines.extend(f"{key} = {json.dumps(value)}" for key, value in values.items()
                     if key not in nested)
        for key, value in nested.items():
            table(f"{name}.{key}", value)

    for name, values in settings.items():
        table(name, values)
    return "\n".join(lines) + "\n"
