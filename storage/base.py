"""The storage interface the core depends on, and the records it returns."""

from __future__ import annotations

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
    origin: dict[str, Any] = field(default_factory=dict)
    seed: int | None = None
    error: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    created_at: float = 0.0
    started_at: float | None = None
    finished_at: float | None = None


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


ACTIVE_STATUSES = ("queued", "running")


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

    # Jobs and their reservations
    async def create_job(self, job: JobRecord) -> int: ...
    async def start_job(self, job_id: str) -> None: ...
    async def finish_job(self, job_id: str, status: str, *, seed: int | None = None,
                         error: str | None = None,
                         metadata: dict[str, Any] | None = None) -> int | None: ...
    async def get_job(self, job_id: str) -> JobRecord | None: ...
    async def recover_interrupted(self) -> list[JobRecord]: ...
    async def pending_notifications(self, platform: str) -> list[JobRecord]: ...
    async def mark_notified(self, job_id: str) -> None: ...
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
