"""Helpers for the contract suite: make jobs, and take one through its whole life."""

from __future__ import annotations

from storage import Storage
from storage.base import Blob, JobRecord, QueueLimits

UPLOAD = Blob("image/png", b"\x89PNG fake upload")
RESULT = Blob("image/png", b"\x89PNG fake result")
LIMITS = QueueLimits(total=1000, per_user=1000)
ME = "instance-a"


def job(job_id: str, user: str = "telegram:1", price: int = 2, provider: str = "webui",
        affinity: str | None = None) -> JobRecord:
    return JobRecord(id=job_id, user_key=user, chat_key="telegram:-100", provider=provider,
                     status="queued", charge="", price=price, params={"prompt": "x"},
                     origin={"chat_id": 5}, platform=user.partition(":")[0], affinity=affinity)


async def make(store: Storage, job_id: str, user: str = "telegram:1", price: int = 2,
               **fields: object) -> int:
    return await store.create_job(job(job_id, user, price, **fields),  # type: ignore[arg-type]
                                  upload=UPLOAD, limits=LIMITS)


async def claim(store: Storage, provider: str = "webui", instance: str = ME, limit: int = 10,
                lease: float = 30.0) -> str | None:
    taken = await store.claim_job(instance, provider, limit=limit, platforms=["telegram"],
                                  lease=lease)
    return taken.job.id if taken else None


async def deliver(store: Storage, job_id: str, instance: str = ME) -> None:
    """claimed → generated → delivered, asserting each step took."""
    assert await store.store_result(job_id, instance, [RESULT], seed=7, metadata={"m": 1},
                                    deadline=1e12)
    assert await store.confirm_delivery(job_id, "chat:1", keep_results=False)


async def register(store: Storage, instance: str = ME, lease: float = 30.0) -> None:
    await store.register_instance(instance, lease=lease, info={})
