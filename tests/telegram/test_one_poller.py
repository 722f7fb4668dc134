"""Two long-polling gateways on one database: one polls, the other waits and takes over.

Real ``img2img-bot run --role gateway`` processes against the fake Bot API, on SQLite and on
PostgreSQL. The fake never sees two getUpdates at once and answers none with 409; after the
poller is killed with SIGKILL the standby serves the updates that follow.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.fakes.telegram_api import TOKEN, FakeTelegram
from tests.telegram.bot_process import ROOT, BotProcess, bot_process

LEASE = 1.5
TAKEN = "telegram-poller: this process took the lease"


@pytest.fixture(params=["sqlite", "postgres"])
def storage_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{(tmp_path / 'bot.db').as_posix()}"
    url: str = request.getfixturevalue("postgres_url")
    return url


def _config(tmp_path: Path, fake: FakeTelegram, storage_url: str) -> Path:
    path = tmp_path / "bot.toml"
    path.write_text(f"""
log_level = "INFO"

[storage]
url = "{storage_url}"

[telegram]
token = "{TOKEN}"
api_base = "{fake.base_url}"

[jobs]
lease = {LEASE}
heartbeat = 0.3

[providers.echo]
type = "echo"
""", encoding="utf-8")
    return path


@contextlib.asynccontextmanager
async def _gateway(config: Path) -> AsyncIterator[BotProcess]:
    async with bot_process("--config", str(config), "run", "--role", "gateway",
                           environ={}, cwd=ROOT) as gateway:
        yield gateway


async def _each_answered_once(fake: FakeTelegram, users: range) -> None:
    for user in users:
        fake.add_chat(user)
        fake.push_update(fake.build.text("/balance", chat_id=user, user_id=user))
    for user in users:
        await fake.wait_for_message(user, timeout=15)
    await asyncio.sleep(0.5)  # a second answer would come now
    assert all(len(fake.messages(user)) == 1 for user in users)


@pytest.mark.timeout(120)
async def test_a_standby_gateway_waits_and_takes_over_from_a_killed_poller(
        tmp_path: Path, storage_url: str) -> None:
    async with FakeTelegram(token=TOKEN) as fake:
        config = _config(tmp_path, fake, storage_url)
        async with _gateway(config) as first:
            await first.wait_for_log(TAKEN)
            async with _gateway(config) as second:
                await second.wait_for_log("another process holds it; standing by")
                await _each_answered_once(fake, range(100, 110))
                await asyncio.sleep(3 * LEASE)  # the standby keeps waiting while it lives
                assert TAKEN not in second.log
                first.process.kill()
                await first.process.wait()
                await second.wait_for_log(TAKEN, timeout=LEASE * 4)
                await _each_answered_once(fake, range(200, 210))
        conflicts = [c for c in fake.calls if c.method == "getUpdates" and c.status == 409]
        assert conflicts == []
        assert fake.max_polls_in_flight == 1
        assert "Conflict" not in first.log + second.log


async def test_a_poller_stopped_cleanly_hands_over_at_once(tmp_path: Path) -> None:
    async with FakeTelegram(token=TOKEN) as fake:
        config = _config(tmp_path, fake, f"sqlite:///{(tmp_path / 'bot.db').as_posix()}")
        config.write_text(config.read_text().replace(f"lease = {LEASE}", "lease = 60"))
        async with _gateway(config) as first:
            await first.wait_for_log(TAKEN)
            async with _gateway(config) as second:
                await second.wait_for_log("standing by")
                assert await first.stop() == 0
                # Far sooner than the 60-s lease: a clean stop drops it.
                await second.wait_for_log(TAKEN, timeout=10)
                await _each_answered_once(fake, range(300, 303))
