"""SIGKILL before a job is stored, and between generation and delivery: the request is made
at the next start, the stored result delivered once, charged once."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sqlite3
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.a1111 import FakeA1111
from tests.fakes.server import jpeg_bytes
from tests.fakes.telegram_api import TOKEN, FakeTelegram
from tests.telegram.conftest import USER_ID


def _config(folder: Path, fake: FakeTelegram, a1111: FakeA1111, *, webhook: bool = False) -> Path:
    path = folder / "config.toml"
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    receive = f"""
mode = "webhook"

[telegram.webhook]
url = "http://127.0.0.1:{port}/tg/hook"
path = "/tg/hook"
host = "127.0.0.1"
port = {port}
secret_token = "crash-test-secret"
""" if webhook else ""
    path.write_text(f"""
[storage]
url = "sqlite:///{folder / 'bot.db'}"

[telegram]
token = "{TOKEN}"
api_base = "{fake.base_url}"
progress_interval = 0.1
{receive}

[credits]
initial = 10
daily_free = 0

[jobs]
lease = 1.0
heartbeat = 0.25
retry_base = 0.5

[providers.webui]
type = "a1111"
url = "{a1111.base_url}"
poll_interval = 0.05
""", encoding="utf-8")
    return path


@contextlib.asynccontextmanager
async def bot(config: Path) -> AsyncIterator[asyncio.subprocess.Process]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "--config", str(config), "run",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    try:
        yield proc
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()


def _job(db: Path) -> tuple[str, str] | None:
    with sqlite3.connect(db) as conn:
        row = conn.execute("SELECT status, charge FROM jobs").fetchone()
    return None if row is None else (row[0], row[1])


async def _delivered_once_at_the_next_start(config: Path, fake: FakeTelegram, a1111: FakeA1111,
                                            update: dict[str, Any], db: Path) -> None:
    """A new process answers ``update`` with one image, made once and charged once."""
    async with bot(config):
        message = update["message"]
        await fake.wait_for(lambda: [
            m for m in fake.messages(USER_ID) if m.kind == "photo"
            and m.reply_to_message_id == message["message_id"]], 30, what="the result")
        await fake.wait_for(lambda: _job(db) == ("delivered", "committed"),
                            10, what="the charge to commit")
    assert len([m for m in fake.messages(USER_ID) if m.kind == "photo"]) == 1
    assert len(a1111.img2img_bodies) == 1  # not made twice
    with sqlite3.connect(db) as conn:
        kinds = [r[0] for r in conn.execute("SELECT kind FROM ledger ORDER BY id")]
        balance = conn.execute("SELECT balance FROM users").fetchone()[0]
    assert kinds == ["initial", "reserve"] and balance == 9


async def test_a_kill_after_generation_delivers_once_at_the_next_start(tmp_path: Path) -> None:
    async with FakeTelegram(token=TOKEN, username="img2img_test_bot") as fake, \
            FakeA1111(delay=0.05) as a1111:
        fake.add_chat(USER_ID)
        config = _config(tmp_path, fake, a1111)
        fake.fail_next("sendPhoto", 502, times=10_000)  # Telegram is down for uploads
        async with bot(config) as first:
            await fake.wait_for(lambda: fake.counts["getUpdates"], 30, what="polling")
            update = fake.push_update(fake.build.photo(jpeg_bytes((320, 240)),
                                                       caption="/img2img a lighthouse"))
            await fake.wait_for(lambda: fake.calls_to("sendPhoto"), 30, what="an upload")
            first.kill()  # the image is made and stored, not delivered
        assert await asyncio.to_thread(_job, tmp_path / "bot.db") == ("generated", "held")
        fake.clear_faults()  # Telegram takes uploads again
        await asyncio.sleep(1.2)  # the dead process's lease runs out
        await _delivered_once_at_the_next_start(config, fake, a1111, update, tmp_path / "bot.db")


@pytest.mark.parametrize("mode", ["polling", "webhook"])
async def test_a_kill_while_the_photo_is_fetched_makes_the_job_at_the_next_start(
        tmp_path: Path, mode: str) -> None:
    """An update is confirmed to Telegram (polling: the next offset; webhook: the answer) only
    once its job is stored: a process killed while it still fetched the photo leaves the update
    with Telegram, and the next start makes it."""
    async with FakeTelegram(token=TOKEN, username="img2img_test_bot") as fake, \
            FakeA1111(delay=0.05) as a1111:
        fake.add_chat(USER_ID)
        fake.webhook_retry_delay = 0.5  # Telegram retries a webhook that did not answer
        config = _config(tmp_path, fake, a1111, webhook=mode == "webhook")
        fake.set_delay("getFile", 3.0)  # Telegram is slow to find the photo
        async with bot(config) as first:
            await fake.wait_for(lambda: fake.counts["getUpdates" if mode == "polling"
                                                     else "setWebhook"], 30, what="the start")
            update = fake.push_update(fake.build.photo(jpeg_bytes((320, 240)),
                                                       caption="/img2img a lighthouse"))
            for _ in range(200):  # (the fake tells of a call once it answers: look)
                if fake.counts["getFile"]:
                    break
                await asyncio.sleep(0.02)
            await asyncio.sleep(0.3)  # long enough for a getUpdates or an answer to confirm it
            assert fake.counts["getFile"] == 1
            first.kill()
        assert fake.pending_update_count() == 1  # not confirmed: Telegram still holds it
        assert await asyncio.to_thread(_job, tmp_path / "bot.db") is None
        fake.set_delay("getFile", 0.0)
        await asyncio.sleep(1.2)  # the dead process's lease on polling runs out
        await _delivered_once_at_the_next_start(config, fake, a1111, update, tmp_path / "bot.db")
