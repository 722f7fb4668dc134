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
    """Each platform's connection state, as its adapter sees it.

    A platform is ``connecting`` until its adapter calls ``up``; a request that cannot reach
    it calls ``down``; the next request that gets an answer (``answered``) brings it back up.
    """

    def __init__(self) -> None:
        self._platforms: dict[str, PartState] = {}
        self._connected: dict[str, str] = {}  # what ``up`` said: who the bot is there

    def expect(self, platform: str) -> None:
        """A platform that has to connect before the bot is healthy."""
        self._platforms.setdefault(platform, PartState(False, "connecting", time.time()))

    def up(self, platform: str, detail: str) -> None:
        self._connected[platform] = detail
        self._set(platform, True, detail)

    def down(self, platform: str, detail: str) -> None:
        self._set(platform, False, detail)

    def answered(self, platform: str) -> None:
        """The platform answered a request: up again if it was down after connecting."""
        if platform in self._connected:
            self._set(platform, True, self._connected[platform])

    def _set(self, platform: str, ok: bool, detail: str) -> None:
        current = self._platforms.get(platform)
        if current is None or (current.ok, current.detail) != (ok, detail):
            self._platforms[platform] = PartState(ok, detail, time.time())

    def platforms(self) -> dict[str, PartState]:
        return dict(self._platforms)
