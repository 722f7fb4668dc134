"""The storage interface the core depends on, and the records it returns."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    id: int
    user_key: str
    amount: int
    kind: str
    job_id: str | None
    note: str
    created_at: float


@dataclass(frozen=True, slots=True)
class JobRecord:
    id: str
    user_key: str
    chat_key: str
    provider: str
    status: str
    charge: str
    price: int
    params: dict[str, Any]
    # Where the job was asked. ``origin["secret"]`` holds what only its delivery may use (a
    # Discord interaction token): storage drops it when the job ends.
    origin: dict[str, Any] = field(default_factory=dict)
    seed: int | None = None
    error: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    created_at: float = 0.0
    started_at: float | None = None
    finished_at: float | None = None
    platform: str = ""
    owner: str | None = None
    affinity: str | None = None
    attempts: int = 0
    notice: str | None = None
    delivery_ref: str | None = None
    delivery_attempts: int = 0
    generated_at: float | None = None


@dataclass(frozen=True, slots=True)
class Stored:
    """A result ``store_result`` kept, with the requester's balance read in its transaction
    (what the result's caption shows)."""

    balance: int | None


@dataclass(frozen=True, slots=True)
class Usage:
    """A user's jobs in one chat since a moment: for cooldowns and daily limits."""

    count: int
    last_at: float | None


@dataclass(frozen=True, slots=True)
class Drift:
    """A user whose balance differs from the sum of their ledger (must never happen)."""

    user_key: str
    balance: int
    ledger_sum: int


@dataclass(frozen=True, slots=True)
class PurchaseRecord:
    """A paid pack: ``charge_id`` is the platform's payment (or entitlement) id."""

    charge_id: str
    platform: str
    user_key: str
    pack_id: str
    credits: int
    currency: str
    price: int
    created_at: float = 0.0
    refunded_at: float | None = None


@dataclass(frozen=True, slots=True)
class PurchaseOutcome:
    """What ``record_purchase`` did: ``granted`` is False when the charge was seen before."""

    granted: bool
    balance: int
    purchase: PurchaseRecord


@dataclass(frozen=True, slots=True)
class RevenueDay:
    """Purchases of one UTC day in one platform and currency; ``price`` is net of refunds."""

    day: str
    platform: str
    currency: str
    purchases: int
    credits: int
    price: int
    refunded: int


ACTIVE_STATUSES = ("queued", "running", "generated")  # not yet delivered or refunded
REFUNDED_STATUSES = ("failed", "cancelled", "expired")
FINAL_STATUSES = ("delivered", *REFUNDED_STATUSES)


@dataclass(frozen=True, slots=True)
class Blob:
    """An image stored with its job: the upload it runs on, or one of its results."""

    mime: str
    data: bytes


@dataclass(frozen=True, slots=True)
class Claim:
    """A job this instance now runs, with its upload (None if it was lost)."""

    job: JobRecord
    upload: Blob | None
    # Other jobs this instance could claim were still queued: claim again when a slot frees.
    more: bool = False


@dataclass(frozen=True, slots=True)
class StartHere:
    """Start a job in the transaction that creates it, for ``instance``, when a claim would
    take it now: a slot of ``limit`` free over every process and no job of ``platforms``
    (or pinned to ``instance``) ahead of it."""

    instance: str
    limit: int
    platforms: tuple[str, ...]
    lease: float


@dataclass(frozen=True, slots=True)
class Created:
    """A job just stored: the balance left after its reservation, and its claim when it
    started at once."""

    balance: int
    claim: Claim | None


@dataclass(frozen=True, slots=True)
class Grants:
    """The free credits a user gets: ``initial`` at first use, and each ``today`` a top-up of
    up to ``daily_free`` toward ``initial``."""

    initial: int
    daily_free: int
    today: str


@dataclass(frozen=True, slots=True)
class QueueLimits:
    """Unfinished jobs allowed at once: in all, and per user (checked where the job is made)."""

    total: int
    per_user: int


@dataclass(frozen=True, slots=True)
class Recovery:
    """What ``recover_expired`` did with the jobs of instances whose lease ran out."""

    requeued: tuple[str, ...] = ()
    refunded: tuple[str, ...] = ()
    released: tuple[str, ...] = ()  # generated results handed back to the outbox


class Storage(Protocol):
    """Everything the core persists. One contract suite (tests/storage) runs on each backend."""

    async def open(self) -> None: ...
    async def close(self) -> None: ...

    # Users and credits
    async def ensure_user(self, user_key: str, *, initial: int, daily_free: int,
                          today: str) -> int: ...
    async def balance(self, user_key: str) -> int | None: ...
    async def ledger(self, user_key: str, limit: int = 10) -> list[LedgerEntry]: ...
    async def grant(self, user_key: str, amount: int, note: str = "") -> int: ...

    # Jobs: the queue, its leases, the outbox of results and the notices owed to users.
    # Every transition is one transaction, with the credit movement it causes.
    async def create_job(self, job: JobRecord, *, upload: Blob, limits: QueueLimits,
                         event: tuple[str, str] | None = None,
                         grants: Grants | None = None) -> int: ...
    async def create_started_job(self, job: JobRecord, *, upload: Blob, limits: QueueLimits,
                                 start: StartHere, event: tuple[str, str] | None = None,
                                 grants: Grants | None = None) -> Created: ...
    async def claim_job(self, instance: str, provider: str, *, limit: int,
                        platforms: Sequence[str], lease: float) -> Claim | None: ...
    async def queue_order(self, provider: str) -> list[str]: ...
    async def store_result(self, job_id: str, instance: str, images: Sequence[Blob], *,
                           seed: int | None, metadata: dict[str, Any],
                           deadline: float) -> Stored | None: ...
    async def results(self, job_id: str) -> list[Blob]: ...
    async def confirm_delivery(self, job_id: str, ref: str, *, keep_results: bool) -> bool: ...
    async def delivery_failed(self, job_id: str, *, retry_at: float) -> None: ...
    async def claim_deliveries(self, instance: str, platforms: Sequence[str], *, lease: float,
                               limit: int = 10) -> list[JobRecord]: ...
    async def finish_job(self, job_id: str, status: str, *, error: str | None = None,
                         metadata: dict[str, Any] | None = None,
                         notice: str | None = None) -> int | None: ...
    async def request_cancel(self, job_id: str, user_key: str | None = None) -> str | None: ...
    async def latest_active(self, user_key: str) -> JobRecord | None: ...
    async def get_job(self, job_id: str) -> JobRecord | None: ...
    async def job_statuses(self, job_ids: Sequence[str]) -> dict[str, str]: ...
    async def set_origin(self, job_id: str, updates: dict[str, Any]) -> None: ...
    async def active_jobs(self) -> int: ...

    # Processes and their leases
    async def register_instance(self, instance: str, *, lease: float,
                                info: dict[str, Any]) -> None: ...
    async def heartbeat(self, instance: str, *, lease: float) -> list[str]: ...
    async def retire_instance(self, instance: str) -> None: ...
    async def recover_expired(self, *, max_attempts: int) -> Recovery: ...
    async def take_lease(self, name: str, holder: str, *, ttl: float) -> bool: ...
    async def drop_lease(self, name: str, holder: str) -> None: ...
    async def expire_undelivered(self) -> list[str]: ...
    async def take_notices(self, platforms: Sequence[str], *, lease: float,
                           limit: int = 20) -> list[JobRecord]: ...
    async def mark_notified(self, job_id: str) -> None: ...
    async def purge(self, *, results_before: float, events_before: float) -> None: ...
    async def usage(self, user_key: str, chat_key: str, since: float) -> Usage: ...

    # Settings
    async def user_settings(self, user_key: str) -> dict[str, Any]: ...
    async def set_user_settings(self, user_key: str, settings: dict[str, Any]) -> None: ...
    async def chat_settings(self, chat_key: str) -> dict[str, Any]: ...
    async def set_chat_settings(self, chat_key: str, settings: dict[str, Any]) -> None: ...

    # Idempotency, privacy, audit
    async def mark_event(self, platform: str, event_id: str) -> bool: ...
    async def forget_user(self, user_key: str) -> int: ...
    async def stats(self) -> dict[str, Any]: ...
    async def drift(self) -> list[Drift]: ...

    # Purchases (exactly once per charge id) and their refunds
    async def record_purchase(self, purchase: PurchaseRecord) -> PurchaseOutcome: ...
    async def get_purchase(self, charge_id: str) -> PurchaseRecord | None: ...
    async def refund_purchase(self, charge_id: str, note: str = "") -> int | None: ...
    async def revenue(self, since: float) -> list[RevenueDay]: ...
