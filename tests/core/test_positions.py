"""Which queue positions are worth a status edit."""

from __future__ import annotations

from bot.presenter import position_worth_showing


def test_only_meaningful_queue_moves_are_shown() -> None:
    shown: int | None = None
    seen = []
    for position in range(50, 0, -1):  # one place at a time, as the queue drains
        if position_worth_showing(shown, position):
            seen.append(position)
            shown = position
    assert seen == [50, 25, 12, 6, 3, 1]
    assert not position_worth_showing(3, 3)
    assert position_worth_showing(3, 6)  # pushed back (a job of higher priority came first)
