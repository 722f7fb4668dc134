"""Telegram's flood limits, enforced by the fake when a test asks (``fake.limits = ...``).

Telegram documents about one message a second per chat, 20 a minute per group and 30 a second
overall, and answers 429 with ``retry_after`` past them; sends and edits both count, chat
actions and deletions do not. Each limit is a leaky bucket (a burst of its size, then its rate),
with a fifth of a message of slack for the jitter between the client's clock and ours.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

from tests.fakes.telegram_model import ApiError

SLACK = 0.2


def counted(method: str) -> bool:
    name = method.lower()
    return name.startswith(("send", "edit", "copy", "forward")) and name != "sendchataction"


@dataclass
class _Bucket:
    size: float
    per_second: float
    level: float = 0.0
    at: float = field(default_factory=time.monotonic)

    def wait_needed(self, now: float) -> float:
        """Seconds until one more message fits (0 = it fits now)."""
        self.level = max(0.0, self.level - (now - self.at) * self.per_second)
        self.at = now
        over = self.level + 1 - self.size - SLACK
        return over / self.per_second if over > 0 else 0.0


@dataclass
class FloodLimits:
    """Per chat, per group and overall; ``refused`` lists (method, chat_id) answered 429."""

    chat_per_second: float = 1.0
    group_per_minute: float = 20.0
    group_burst: int = 20
    global_per_second: float = 30.0
    refused: list[tuple[str, int]] = field(default_factory=list)
    _chats: dict[int, _Bucket] = field(default_factory=dict)
    _groups: dict[int, _Bucket] = field(default_factory=dict)
    _overall: _Bucket | None = None

    def check(self, method: str, chat_id: object) -> None:
        """Count one request, or raise the 429 Telegram would answer."""
        if not counted(method) or not isinstance(chat_id, int | str):
            return
        try:
            chat = int(chat_id)
        except ValueError:
            return
        if self._overall is None:
            self._overall = _Bucket(self.global_per_second, self.global_per_second)
        buckets = [self._chats.setdefault(chat, _Bucket(self.chat_per_second,
                                                         self.chat_per_second))]
        if chat < 0:
            buckets.append(self._groups.setdefault(chat, _Bucket(
                self.group_burst, self.group_per_minute / 60)))
        buckets.append(self._overall)
        now = time.monotonic()
        wait = max(bucket.wait_needed(now) for bucket in buckets)
        if wait > 0:
            self.refused.append((method, chat))
            retry_after = max(1, math.ceil(wait))
            raise ApiError(429, f"Too Many Requests: retry after {retry_after}",
                           retry_after=retry_after)
        for bucket in buckets:
            bucket.level += 1
