"""What ``/healthz`` reports about the parts that run in the background: the chat platforms."""

from __future__ import annotations

import time
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class PartState:
    ok: bool
    detail: str
    since: float


class Health:
    """Each platform's last known connection state, set by its adapter as it changes."""

    def __init__(self) -> None:
        self._platforms: dict[str, PartState] = {}

    def expect(self, platform: str) -> None:
        """A platform that has to connect before the bot is healthy."""
        self._platforms.setdefault(platform, PartState(False, "connecting", time.time()))

    def set(self, platform: str, ok: bool, detail: str = "") -> None:
        current = self._platforms.get(platform)
        if current is None or current.ok != ok or current.detail != detail:
            self._platforms[platform] = PartState(ok, detail or ("connected" if ok else "down"),
                                                  time.time())

    def platforms(self) -> dict[str, PartState]:
        return dict(self._platforms)
