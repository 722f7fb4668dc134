"""Reaching a platform at start: tried again, with growing pauses, until it answers or the bot
stops.

Hand-written: a retry library (tenacity) sleeps between tries, and the pause here must end the
moment the bot is told to stop; a custom sleep for it would be this loop again.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")
E = TypeVar("E", bound=BaseException)
FIRST_PAUSE, LONGEST_PAUSE = 1.0, 60.0


async def until_reached(stop: asyncio.Event, attempt: Callable[[], Awaitable[T]],
                        unreachable: type[E] | tuple[type[E], ...],
                        failed: Callable[[E, float], None]) -> T | None:
    """``attempt()``'s result, tried again after each ``unreachable`` error (``failed`` gets it
    and the pause before the next try: 1 s, doubling up to 60 s); None once ``stop`` is set."""
    pause = FIRST_PAUSE
    while not stop.is_set():
        try:
            return await attempt()
        except unreachable as exc:
            failed(exc, pause)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), pause)
        pause = min(pause * 2, LONGEST_PAUSE)
    return None
