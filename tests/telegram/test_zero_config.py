"""A bot token and nothing else: ``img2img-bot run`` starts, answers, and says which backend."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

from tests.fakes.telegram_api import TOKEN, FakeTelegram
from tests.telegram.bot_process import bot_process
from tests.telegram.conftest import USER_ID
from tests.texts import en, pattern


async def test_a_token_alone_starts_a_working_bot(fake: FakeTelegram, tmp_path: Path) -> None:
    environ = {"TELEGRAM_BOT_TOKEN": TOKEN, "IMG2IMG_TELEGRAM__API_BASE": fake.base_url}
    async with bot_process("run", environ=environ, cwd=tmp_path) as bot:
        backend = await bot.wait_for_log("image backend:")
        await fake.wait_for(lambda: fake.counts["getUpdates"], timeout=30,
                            what="the bot to start polling")
        update = fake.push_update(fake.build.text("/start"))
        reply = await fake.wait_for_message(
            USER_ID, lambda m: m.reply_to_message_id == update["message"]["message_id"]
            or pattern("tg-start-hello").search(m.text or "") is not None, timeout=15)
        assert en("tg-start-example") in (reply.text or "")
        # No GPU here: the AI Horde, anonymously; the line says why and how to choose another.
        assert "image backend: horde" in backend and "anonymous key" in backend
        assert "IMG2IMG_PROVIDERS__NAME__TYPE" in backend
        # The Horde cannot be reached from here: one warning that names it, and the bot runs.
        warning = await bot.wait_for_log("provider horde (horde): FAILED")
        assert "WARNING" in warning and "aihorde.net" in warning
        assert "check the network between the bot and that host" in warning
        code = await bot.stop()
    assert code == 0, bot.log
    assert (tmp_path / "data" / "img2img.db").is_file()  # SQLite under ./data by default
    assert "Traceback" not in bot.log and TOKEN not in bot.log


async def test_a_busy_http_port_is_one_clear_line(fake: FakeTelegram, tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        environ = {"TELEGRAM_BOT_TOKEN": TOKEN, "IMG2IMG_TELEGRAM__API_BASE": fake.base_url,
                   "IMG2IMG_PROVIDERS__ECHO__TYPE": "echo", "IMG2IMG_HTTP__ENABLED": "true",
                   "IMG2IMG_HTTP__PORT": str(port)}
        async with bot_process("run", environ=environ, cwd=tmp_path) as bot:
            line = await bot.wait_for_log("error: http: cannot listen on")
            code = await asyncio.wait_for(bot.process.wait(), 20)  # it stops by itself
    assert code == 2 and f"127.0.0.1:{port}" in line and "IMG2IMG_HTTP__PORT" in line
    assert "Traceback" not in bot.log
