"""The owners' figures: users, credits, jobs, the queue and sales, gathered in one place."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from bot.i18n import t
from bot.payments import revenue_lines
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

    def lines(self) -> list[str]:
        """The figures as short lines in the reader's language."""
        jobs = ", ".join(f"{k} {v}" for k, v in sorted(self.jobs.items())) or t("stats-none")
        return [t("stats-users", users=self.users), t("stats-jobs", jobs=jobs),
                t("stats-jobs-day", jobs=self.jobs_last_24h),
                t("stats-in-progress", jobs=self.in_progress),
                t("stats-spent", credits=self.credits_spent),
                t("stats-outstanding", credits=self.credits_outstanding),
                t("stats-drift", rows=len(self.drift) or t("stats-none")),
                *(t("stats-sales", line=line) for line in revenue_lines(list(self.revenue)))]
