"""The owners' figures: users, credits, jobs, the queue and sales, gathered in one place."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from storage.base import Drift, RevenueDay


@dataclass(frozen=True, slots=True)
class Stats:
    """What ``/stats`` shows; ``drift`` must stay empty (balance == sum of the ledger)."""

    users: int
    credits_outstanding: int
    jobs: Mapping[str, int]  # by status, over the whole history
    jobs_last_24h: int
    credits_spent: int
    in_progress: int  # queued or running now, over every process
    providers: tuple[str, ...]
    drift: tuple[Drift, ...]
    revenue: tuple[RevenueDay, ...]  # the last 7 days
