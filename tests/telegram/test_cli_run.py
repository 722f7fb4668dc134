"""``img2img-bot run`` with a [telegram] section starts the bot; SIGTERM stops it cleanly."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

from tests.fakes.a1111 import FakeA1111
from tests.fakes.telegram_api import TOKEN, FakeTelegram
from tests.telegram.conftest import USER_ID, image_size
from tests.texts import field

ROOT = Path(__file__).resolve().parents[2]


async def test_run_serves_telegram_until_sigterm(fake: FakeTelegram, a1111: FakeA1111,
                                                 tmp_path: Path) -> None:
    config = tmp_path / "bot.toml"
    config.write_text(f"""
[storage]
url = "sqlite:///{(tmp_path / 'bot.db').as_posix()}"

[telegram]
token = "{TOKEN}"
api_base = "{fake.base_url}"
progress_interval = 0.1

[credits]
initial = 5
daily_free = 0

[defaults]
provider = "webui"

[providers.webui]
type = "a1111"
url = "{a1111.base_url}"
poll_interval = 0.05
""", encoding="utf-8")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "--config", str(config), "run", cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        await fake.wait_for(lambda: fake.counts["getUpdates"] or process.returncode is not None,
                            timeout=20, what="the bot to start polling")
        assert process.returncode is None
        assert fake.calls_to("setMyCommands"), "register_commands was not called"
        update = fake.push_update(fake.build.photo(caption="/img2img a cat --strength 0.4"))
        result = await fake.wait_for_message(
            USER_ID, lambda m: m.kind == "photo"
            and m.reply_to_message_id == update["message"]["message_id"], timeout=10)
        body = a1111.img2img_bodies[0]
        assert image_size(result.data) == (body["width"], body["height"])
        assert field("strength", 0.4) in (result.caption or "")
        assert field("balance", 4) in (result.caption or "")
        process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(process.communicate(), 10)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0, stderr.decode()
    assert "Traceback" not in stderr.decode()
