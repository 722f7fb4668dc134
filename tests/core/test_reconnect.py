"""Reaching a platform at start: retried with growing pauses, cut short by stop."""

from __future__ import annotations

import asyncio

import pytest

from bot.reconnect import until_reached


async def test_tries_again_with_doubling_pauses_until_it_answers(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("bot.reconnect.FIRST_PAUSE", 0.01)
    tries: list[int] = []
    pauses: list[float] = []

    async def attempt() -> str:
        tries.append(1)
        if len(tries) < 3:
            raise ConnectionError("down")
        return "up"

    answer = await until_reached(asyncio.Event(), attempt, ConnectionError,
                                 lambda exc, pause: pauses.append(pause))
    assert answer == "up" and pauses == [0.01, 0.02]


async def test_stop_ends_the_pause_at_once_and_other_errors_pass() -> None:
    stop = asyncio.Event()

    async def attempt() -> None:
        stop.set()  # told to stop while the platform is still down
        raise ConnectionError("down")

    started = asyncio.get_running_loop().time()
    assert await until_reached(stop, attempt, ConnectionError, lambda exc, pause: None) is None
    assert asyncio.get_running_loop().time() - started < 0.5  # not the 1 s pause

    async def refused() -> None:
        raise PermissionError("bad token")

    with pytest.raises(PermissionError):
        await until_reached(asyncio.Event(), refused, ConnectionError, lambda exc, pause: None)
