"""The order in which claims take a provider's queued jobs, shared by every storage backend."""

from __future__ import annotations

from collections.abc import Sequence


def turn_key(last_served: float | None, created_at: float) -> float:
    """A job's place: its user's last start, or its own creation if that came later.

    The oldest key goes first, so a user who just had a job start waits behind everyone else
    (round robin), and a user's own jobs keep their order.
    """
    return max(last_served or 0.0, created_at)


def fair_order(rows: Sequence[tuple[str, str, float, float | None]]) -> list[str]:
    """Job ids in claim order from ``(id, user_key, created_at, user's last start)`` rows,
    simulating the claims one by one (each claim moves its user to the back)."""
    pending: dict[str, list[tuple[str, float]]] = {}
    served: dict[str, float | None] = {}
    for job_id, user_key, created_at, last_at in sorted(rows, key=lambda r: r[2]):
        pending.setdefault(user_key, []).append((job_id, created_at))
        served[user_key] = last_at
    order: list[str] = []
    clock = max([r[2] for r in rows] + [r[3] or 0.0 for r in rows], default=0.0)
    while pending:
        user_key = min(pending, key=lambda u: (turn_key(served[u], pending[u][0][1]),
                                               pending[u][0][1]))
        job_id, _ = pending[user_key].pop(0)
        order.append(job_id)
        clock += 1.0
        served[user_key] = clock
        if not pending[user_key]:
            del pending[user_key]
    return order
