"""A pool job is charged once, on success, whichever member ran it."""

from __future__ import annotations

from pathlib import Path

from bot.app import running_app
from bot.config import build_config
from bot.events import Done, Failed
from bot.jobs import GenerationRequest
from bot.models import ChatRef, UserRef
from tests.fakes.a1111 import FakeA1111
from tests.fakes.server import jpeg_bytes
from tests.providers.helpers import dead_url

USER = UserRef("telegram", "7")
CHAT = ChatRef("telegram", "7", private=True)


async def test_failover_job_is_charged_exactly_once(tmp_path: Path) -> None:
    async with FakeA1111() as alive:
        config = build_config({
            "storage": {"url": f"sqlite:///{tmp_path / 'bot.db'}"},
            "credits": {"initial": 10, "daily_free": 0},
            "defaults": {"provider": "farm"},
            "providers": {
                "dead": {"type": "a1111", "url": dead_url(), "retries": 1, "cost": 5},
                "alive": {"type": "a1111", "url": alive.base_url, "cost": 5},
                "farm": {"type": "pool", "members": ["dead", "alive"], "cost": 2},
            },
        }, environ={})
        async with running_app(config) as app:
            done = await (await app.service.submit(GenerationRequest(
                user=USER, chat=CHAT, image=jpeg_bytes(), prompt="a fox"))).wait()
            assert isinstance(done, Done) and done.cost == 2 and done.balance == 8
            alive.fail("server_error")  # an accepted failure: refunded, not retried elsewhere
            failed = await (await app.service.submit(GenerationRequest(
                user=USER, chat=CHAT, image=jpeg_bytes(), prompt="a fox"))).wait()
            assert isinstance(failed, Failed) and failed.balance == 8
            ledger = [(e.kind, e.amount) for e in await app.storage.ledger(USER.key, 20)]
            assert sorted(ledger) == sorted([("initial", 10), ("reserve", -2), ("reserve", -2),
                                             ("refund", 2)])
            assert await app.storage.drift() == []
            jobs = [await app.storage.get_job(h) for h in
                    [e.job_id for e in await app.storage.ledger(USER.key, 20) if e.job_id]]
            members = {job.metadata.get("member") for job in jobs if job and job.status ==
                       "delivered"}
            assert members == {"alive"}
        assert len(alive.img2img_bodies) == 2
