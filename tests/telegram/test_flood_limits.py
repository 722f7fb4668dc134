"""A busy group within Telegram's flood limits: every result arrives, status edits stay few."""

from __future__ import annotations

from typing import Any

from tests.fakes.a1111 import FakeA1111
from tests.fakes.telegram_api import FakeTelegram
from tests.fakes.telegram_limits import FloodLimits
from tests.telegram.conftest import GROUP_ID, USER_ID, start_telegram

USERS = 50
# Telegram's limits, ten times faster (a group's burst stays 20), so the test takes seconds.
LIMITS = {"chat_per_second": 10.0, "group_per_minute": 200.0, "group_burst": 20,
          "global_per_second": 300.0}


async def test_fifty_users_in_one_group_get_every_result_without_a_429_from_status(
        fake: FakeTelegram, a1111: FakeA1111, settings: dict[str, Any]) -> None:
    fake.limits = FloodLimits(**LIMITS)
    a1111.delay = 0.4
    settings["telegram"].update(status_after=0.1, progress_interval=0.2, limits=LIMITS)
    settings["providers"]["webui"]["max_concurrency"] = 4
    async with start_telegram(fake, a1111, settings) as tg:
        updates = [tg.send(fake.build.photo(caption=f"/img2img cat {n}", chat_id=GROUP_ID,
                                            user_id=USER_ID + n)) for n in range(USERS)]
        for update in updates:
            await tg.result(update, timeout=60)
        await tg.settled(GROUP_ID, timeout=20)
    results = [m for m in fake.photos(GROUP_ID) if "🔁 Again" in m.button_texts]
    assert len(results) == USERS
    assert fake.limits.refused == [], fake.limits.refused[:5]
    edits = fake.counts["editMessageText"] / USERS
    statuses = len([m for m in fake.messages(GROUP_ID, include_deleted=True) if m.kind == "text"])
    print(f"status messages {statuses}, edits per job {edits:.2f}")
    assert edits <= 3
