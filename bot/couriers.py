"""How results and notices reach users: one ``Courier`` per platform, given by its adapter.

The core stores each result before it hands it to the courier, and commits the charge only
when the courier reports the platform's confirmation, so an image the platform refused is
retried, and refunded at the delivery deadline, never charged.
"""

from __future__ import annotations

from typing import Protocol

from bot.events import Done
from bot.jobs import JobHandle
from storage.base import JobRecord

__all__ = ["Courier", "JobRecord", "LocalCourier"]  # adapters take the job record from here


class Courier(Protocol):
    """A platform's side of delivery; it reaches the platform's API without the request."""

    async def deliver(self, job: JobRecord, done: Done) -> str:
        """Send the result where the job was asked; returns the platform's message id.

        Raises ``DeliveryRefused`` (``permanent`` when retrying cannot help).
        """
        ...

    async def notify(self, job: JobRecord, text: str) -> None:
        """Tell the job's user something (a restart, a refund); raises ``DeliveryRefused``."""
        ...

    def resume(self, handle: JobHandle, job: JobRecord) -> None:
        """Start showing a job this process runs but did not accept (after a restart); called
        in the job's language, which the follow-up's task keeps."""
        ...


class LocalCourier:
    """For jobs of a platform no adapter serves here (the CLI, tests): the result goes to
    whoever follows the job's handle in this process, so such jobs stay with this process."""

    async def deliver(self, job: JobRecord, done: Done) -> str:
        return f"local:{job.id}"

    async def notify(self, job: JobRecord, text: str) -> None:
        return None

    def resume(self, handle: JobHandle, job: JobRecord) -> None:
        return None


def origin_notices(job: JobRecord) -> tuple[str, ...]:
    """Notices the adapter added when it accepted the job (e.g. about albums)."""
    return tuple(str(n) for n in job.origin.get("notices", ()))


def asked_pref(job: JobRecord, name: str) -> bool | None:
    """A preference as the job was asked with (None for jobs stored before prefs were)."""
    prefs = job.params.get("prefs")
    return bool(prefs.get(name, False)) if isinstance(prefs, dict) else None
