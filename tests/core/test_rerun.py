from __future__ import annotations

from pathlib import Path

import pytest

from bot.errors import NotAllowed
from bot.rerun import Action, plan_rerun
from storage import SQLiteStorage
from storage.base import Blob, JobRecord, QueueLimits


async def test_buttons_plan_the_next_request(tmp_path: Path) -> None:
    store = SQLiteStorage(tmp_path / "db.sqlite")
    await store.open()
    await store.ensure_user("telegram:1", initial=5, daily_free=0, today="d")
    await store.register_instance("me", lease=30, info={})
    await store.create_job(JobRecord(
        id="j", user_key="telegram:1", chat_key="telegram:1", provider="p", status="queued",
        charge="", price=1, origin={"chat_id": 1}, platform="telegram",
        params={"prompt": "fox", "request": {"steps": 12, "seed": 5},
                "resolved": {"strength": 0.95}}), upload=Blob("image/png", b"x"),
        limits=QueueLimits(10, 10))
    assert await store.claim_job("me", "p", limit=1, platforms=["telegram"], lease=30)
    assert await store.store_result("j", "me", [Blob("image/png", b"y")], seed=99, metadata={},
                                    deadline=1e12)
    assert await store.confirm_delivery("j", "1:2", keep_results=False)
    again = await plan_rerun(store, "j", Action.AGAIN, chat_key="telegram:1")
    assert again is not None and again.overrides.seed is None and again.overrides.steps == 12
    stronger = await plan_rerun(store, "j", Action.STRONGER, chat_key="telegram:1")
    assert stronger is not None
    assert stronger.overrides.strength == 1.0 and stronger.overrides.seed == 99
    weaker = await plan_rerun(store, "j", Action.WEAKER, chat_key="telegram:1")
    assert weaker is not None and weaker.overrides.strength == 0.85
    reuse = await plan_rerun(store, "j", Action.REUSE, chat_key="telegram:1")
    assert reuse is not None and reuse.use_result and reuse.prompt == "fox"
    assert await plan_rerun(store, "missing", Action.AGAIN, chat_key="telegram:1") is None
    with pytest.raises(NotAllowed):
        await plan_rerun(store, "j", Action.AGAIN, chat_key="telegram:666")
    with pytest.raises(NotAllowed):
        await plan_rerun(store, "j", Action.AGAIN, chat_key="telegram:1", place={"chat_id": "2"})
    assert await plan_rerun(store, "j", Action.AGAIN, chat_key="telegram:1",
                            place={"chat_id": "1"}) is not None
    await store.close()
