"""SIGKILL between a purchase's grant and its consume, in a real ``img2img-bot run`` process.

The fake Discord takes the consume request and never answers it, so the process is killed at
exactly that moment: the grant is committed and the entitlement is not consumed. The next
start lists the unconsumed entitlement, finds the grant already made, and consumes it.
"""

from __future__ import annotations

import asyncio
import signal
import sqlite3
from pathlib import Path

from tests.discord.test_payments import SKU
from tests.discord.test_run_command import bot_process, write_config
from tests.fakes.a1111 import FakeA1111
from tests.fakes.discord_api import FakeDiscord
from tests.fakes.discord_world import MEMBER


def config_with_a_pack(tmp_path: Path, fake: FakeDiscord, a1111: FakeA1111) -> Path:
    path = write_config(tmp_path, fake, a1111)
    path.write_text(path.read_text(encoding="utf-8") + f"""
[payments]
enabled = true

[[payments.packs]]
id = "small"
credits = 100
discord_sku = {SKU}
""", encoding="utf-8")
    return path


def ledger_rows(db: Path) -> list[tuple[str, int, str | None]]:
    conn = sqlite3.connect(db)
    try:
        return list(conn.execute("SELECT kind, amount, charge_id FROM ledger WHERE user_key = ? "
                                 "ORDER BY id", (f"discord:{MEMBER.id}",)))
    finally:
        conn.close()


async def test_sigkill_after_the_grant_before_consume_grants_once_and_consumes(
        tmp_path: Path, fake: FakeDiscord, a1111: FakeA1111) -> None:
    config = config_with_a_pack(tmp_path, fake, a1111)
    fake.shop.hold_consumes()
    async with bot_process(config) as proc:
        await fake.wait_for(lambda: fake.gateway.live_sessions, 20)
        await fake.wait_for(lambda: fake.shop.list_calls, 20)  # its start-up listing is done
        entitlement = await fake.shop.buy(MEMBER, SKU)
        await fake.wait_for(lambda: fake.shop.consume_calls, 20)
        proc.send_signal(signal.SIGKILL)
        assert await proc.wait() == -signal.SIGKILL
    granted = ledger_rows(tmp_path / "bot.db")
    assert granted == [("initial", 20, None), ("purchase", 100, entitlement["id"])]
    assert not fake.shop.consumed(entitlement)

    fake.shop.release_consumes()
    async with bot_process(config) as proc:
        await fake.wait_for(lambda: fake.shop.consumed(entitlement), 20)
        proc.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(proc.communicate(), 20)
        assert proc.returncode == 0, err.decode()
    assert ledger_rows(tmp_path / "bot.db") == granted
    assert len(fake.shop.consume_calls) == 2
