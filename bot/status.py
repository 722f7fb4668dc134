"""A job's status message, throttled to the platforms' limits, over a platform's ``Surface``.

The status appears only once the job has lasted ``after`` seconds (a fast job never shows
one), then changes at most once per ``interval``. Lines that come quicker are merged: only
the latest is shown. When the platform's outgoing limits ask to keep room for results
(``may_send``), the line waits and is tried again later, merged with any newer one. Once
the result is on its way (``hold``) the status changes no more, and a status message not
sent yet is never sent. Deleted by someone, it is "gone": updates stop, and the job's end
comes as a new message.

Hand-written: the rule is per message and mixes a due time, a minimum gap counted from the
platform's last answer, merging and an external veto. Rate limiters (aiolimiter, the Bot
API's own) queue every call in order, which is what status lines must not do: a stale line
is worth nothing, so it is replaced, never queued.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

MIN_RETRY = 0.25  # a line held back for the outgoing limits is tried again this late


class Edit(enum.Enum):
    """How the platform answered an edit of the status message."""

    SHOWN = "shown"  # the message says it now (or already did)
    GONE = "gone"  # deleted, or too old to edit: stop updating it
    FAILED = "failed"  # this edit did not happen; the message is still there


class Surface(Protocol):
    """Where a platform shows one job's status; the adapter translates these to its API.

    A surface that subclasses this and has no chat action, no status message of its own to
    remove and no send limits of its own writes only ``send`` and ``edit``.
    """

    # Seconds a chat action ("sending a photo…") lasts, None where the platform has none.
    action_every: float | None = None

    async def send(self, text: str, *, cancel: bool) -> str | None:
        """Post a new status message (with the Cancel button if ``cancel``); its id, or None
        when the platform refused it."""
        ...

    async def edit(self, text: str, *, cancel: bool) -> Edit:
        """Change the status message shown, with or without the Cancel button."""
        ...

    async def delete(self) -> None:
        """The result took the status's place: remove the status message (errors ignored);
        by default there is nothing to remove (the result replaced the status in place)."""
        return None  # a body, so that subclasses need not write one

    async def act(self) -> None:
        """Show the chat action once (errors ignored); by default the platform has none."""
        return None

    def may_send(self) -> bool:
        """Whether a status update may go now without delaying anyone's result; by default
        always (the platform's client waits for its own limits)."""
        return True


def with_notices(line: str, notices: tuple[str, ...]) -> str:
    """The status line, then one line per notice about the request."""
    return "\n".join([line, *(f"ℹ️ {notice}" for notice in notices)])


class Status:
    """One job's status message on ``surface``: due after ``after`` s, then at most one change
    per ``interval`` s; ``shown`` when a status message is already there (shown by a process
    before a restart, or a platform reply that exists from the start)."""

    def __init__(self, surface: Surface, *, interval: float, after: float,
                 notices: tuple[str, ...] = (), shown: bool = False,
                 on_sent: Callable[[str], Awaitable[None]] | None = None) -> None:
        self.surface = surface
        self.interval = interval
        self.notices = notices
        self.shown = shown
        self.gone = False
        self.held = False
        self.on_sent = on_sent  # a status message with the Cancel button was posted
        self._due = time.monotonic() + after
        self._retry_at = 0.0
        self._last: float | None = None  # when the platform last answered a send or edit
        self._text: str | None = None  # what the message says
        self._pending: str | None = None
        self._flush: asyncio.Task[None] | None = None
        self._sending: asyncio.Task[bool] | None = None

    def update(self, line: str) -> None:
        """Show ``line`` once the status is due and the interval since the last change is over."""
        if self.gone or self.held:
            return
        self._pending = with_notices(line, self.notices)
        if self._flush is None or self._flush.done():
            self._flush = asyncio.create_task(self._flush_later(), name="status-flush")

    async def hold(self) -> None:
        """The result is on its way: no more changes (a first send under way still ends)."""
        self.held = True
        await self._stop_flush()

    async def finish(self, line: str) -> None:
        """The job's last state, without the Cancel button (still within the interval);
        a new message says it when there is no status message to edit."""
        await self.close()
        text = with_notices(line, self.notices)
        if self.shown and not self.gone:
            if self._last is not None:
                await asyncio.sleep(max(0.0, self._last + self.interval - time.monotonic()))
            await self._edit(text, cancel=False)
            if not self.gone:
                return
        await self._send(text, cancel=False)

    async def remove(self) -> None:
        """The result is out: the status message goes."""
        await self.close()
        if self.shown and not self.gone:
            await self.surface.delete()

    async def close(self) -> None:
        """Drop a pending change; a status message already on its way is waited for."""
        await self._stop_flush()
        if self._sending is not None:
            await asyncio.gather(self._sending, return_exceptions=True)

    async def _stop_flush(self) -> None:
        if self._flush is not None:
            self._flush.cancel()
            await asyncio.gather(self._flush, return_exceptions=True)

    async def _flush_later(self) -> None:
        while self._pending is not None and not self.gone:
            due = self._due if self._last is None else self._last + self.interval
            await asyncio.sleep(max(0.0, max(due, self._retry_at) - time.monotonic()))
            if not self.surface.may_send():
                # Results first: this line (or a newer one) goes at a later try.
                self._retry_at = time.monotonic() + max(self.interval, MIN_RETRY)
                continue
            text, self._pending = self._pending, None
            if self.shown:
                await self._edit(text, cancel=True)
            else:
                # Shielded: a status message sent but not known would stay in the chat.
                self._sending = asyncio.create_task(self._send(text, cancel=True))
                await asyncio.shield(self._sending)

    async def _send(self, text: str, *, cancel: bool) -> bool:
        ref = await self.surface.send(text, cancel=cancel)
        if ref is None:
            self.gone = True
            return False
        self.shown, self.gone, self._text, self._last = True, False, text, time.monotonic()
        if cancel and self.on_sent is not None:
            with contextlib.suppress(Exception):  # only needed to update it after a restart
                await self.on_sent(ref)
        return True

    async def _edit(self, text: str, *, cancel: bool) -> None:
        if self.gone or (cancel and text == self._text):
            return
        try:
            outcome = await self.surface.edit(text, cancel=cancel)
        finally:
            # Counted from the answer, so the platform never sees two closer than interval.
            self._last = time.monotonic()
        if outcome is Edit.GONE:
            self.gone = True
        elif outcome is Edit.SHOWN:
            self._text = text
