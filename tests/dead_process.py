"""What a process that died leaves in storage: a job it was running, for restart tests."""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from typing import Any

from bot.app import App
from bot.models import Params
from storage.base import Blob, JobRecord, QueueLimits
from tests.fakes.server import jpeg_bytes


async def left_running(app: App, job_id: str, *, user_key: str, chat_key: str,
                       origin: dict[str, Any], attempts: int, price: int = 1,
                       prompt: str = "a cat", provider: str = "webui") -> None:
    """``job_id`` was on its ``attempts``-th run in a process whose lease has now run out."""
    platform = user_key.partition(":")[0]
    await app.storage.ensure_user(user_key, initial=app.config.credits.initial,
                                  daily_free=0, today="2026-01-01")
    await app.storage.register_instance("dead", lease=0.01, info={})
    params = Params(prompt=prompt, provider=provider, strength=0.6, steps=20, cfg=7.0,
                    width=512, height=384)
    await app.storage.create_job(JobRecord(
        id=job_id, user_key=user_key, chat_key=chat_key, provider=provider, status="queued",
        charge="", price=price, platform=platform, origin=origin,
        params={"prompt": prompt, "resolved": asdict(params)}),
        upload=Blob("image/jpeg", jpeg_bytes()), limits=QueueLimits(10, 10))
    for attempt in range(attempts):
        if attempt:
            await asyncio.sleep(0.05)
            await app.storage.recover_expired(max_attempts=attempts + 1)
        assert await app.storage.claim_job("dead", provider, limit=9, platforms=[platform],
                                           lease=0.01)
    await asyncio.sleep(0.05)
