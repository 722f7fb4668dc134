"""``python -m bot --config FILE run`` with a [discord] section, as a real process."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

import httpx

from tests.discord.conftest import bot_config, started
from tests.discord.helpers import ask, ledger, outcome
from tests.fakes.a1111 import FakeA1111
from tests.fakes.discord_api import FakeDiscord
from tests.fakes.discord_model import FakeMessage
from tests.fakes.discord_world import GENERAL, MEMBER
from tests.texts import en


def write_config(tmp: Path, fake: FakeDiscord, a1111: FakeA1111, log_level: str = "WARNING"
                 ) -> Path:
    path = tmp / "config.toml"
    path.write_text(f"""
log_level = "{log_level}"

[storage]
url = "sqlite:///{tmp / 'bot.db'}"

[credits]
initial = 20
daily_free = 0

[jobs]
lease = 1.0
heartbeat = 0.25

[defaults]
provider = "webui"

[providers.webui]
type = "a1111"
url = "{a1111.base_url}"
poll_interval = 0.02
label = "WebUI"

[discord]
token = "{fake.token}"
api_base = "{fake.api_base}"
gateway_url = "{fake.gateway_url}"
progress_interval = 0.05
""", encoding="utf-8")
    return path


@contextlib.asynccontextmanager
async def bot_process(config: Path, *args: str, env: Mapping[str, str] | None = None
                      ) -> AsyncIterator[asyncio.subprocess.Process]:
    """``python -m bot --config CONFIG run ARGS`` (``env`` laid over this one's); killed on exit."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "--config", str(config), "run", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **(env or {})})
    try:
        yield proc
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_run_answers_a_slash_command_and_stops_on_sigterm(
        tmp_path: Path, fake: FakeDiscord, a1111: FakeA1111) -> None:
    async with bot_process(write_config(tmp_path, fake, a1111)) as proc:
        rec = await ask(fake, timeout=20)
        msg = await outcome(fake, rec, timeout=20)
        assert msg.embed is not None and msg.file().startswith(b"\x89PNG")
        proc.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(proc.communicate(), 20)
        assert proc.returncode == 0, err.decode()
        assert "Traceback" not in err.decode(), err.decode()
    assert fake.gateway.sessions and not fake.gateway.live_sessions


async def test_a_crash_mid_job_is_made_again_and_told_at_the_next_start(
        tmp_path: Path, fake: FakeDiscord, a1111: FakeA1111) -> None:
    a1111.delay = 30
    async with bot_process(write_config(tmp_path, fake, a1111)) as proc:
        rec = await ask(fake, {"prompt": "a lighthouse"}, timeout=20)
        await fake.wait_for(lambda: (m := fake.original(rec.token)) and "🎨" in m.content, 20)
        proc.kill()  # no goodbye: the job stays "running" in the database
        await proc.wait()
    async with httpx.AsyncClient() as client:  # end the fake WebUI's long sleep
        await client.post(f"{a1111.base_url}/sdapi/v1/interrupt")
    a1111.delay = 0.05
    await asyncio.sleep(1.2)  # the dead process's lease runs out
    async with started(fake, bot_config(tmp_path / "bot.db", fake, a1111)) as (app, _):
        def posted() -> list[FakeMessage]:
            return [m for m in fake.channel_messages(GENERAL.id) if m.interaction_token is None]
        [notice] = await fake.wait_for(lambda: len(posted()) == 1 and posted())
        assert notice.content == f"<@{MEMBER.id}> {en('notice-requeued')}"
        # Within the token's 15 minutes, the result replaces the reply's progress.
        result = await fake.wait_for(lambda: (m := fake.original(rec.token)) and m.embeds and m)
        assert result.embed is not None and len(posted()) == 1
        assert await ledger(app) == [("initial", 20), ("reserve", -1)]
