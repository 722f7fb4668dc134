"""A bot's own flood limits: per chat, per group and overall, with results before status.

Chat platforms answer 429 past their flood limits (Telegram: about one message a second in a
chat, 20 a minute in a group and 30 a second overall, sends and edits alike), and a 429 delays
everything after it. Every sending request waits for its slot here (aiolimiter's leaky buckets);
a status update asks first with ``status_may_send`` and is skipped (its line merged into the
next one) when a result is waiting for the chat or the buckets are nearly full, so status edits
never queue in front of results.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from aiolimiter import AsyncLimiter

from bot.config import SendLimits

STATUS_RESERVE = 0.25  # of the group and global buckets, kept for results
# Telegram counts a message when it arrives, after the network's jitter, and a bucket that is
# kept exactly full has no room for that. So each bucket is one message smaller and drains at
# nine tenths of the documented rate: the spare room grows while a busy chat keeps sending.
RATE_MARGIN = 0.9
MAX_IDLE_BUCKETS = 10_000  # past this many chats, empty buckets are forgotten


def _bucket(size: float, per_second: float) -> AsyncLimiter:
    """A leaky bucket of ``size`` messages draining at ``per_second``, with the margin above."""
    capacity = max(1.0, size - 1)
    return AsyncLimiter(capacity, capacity / (per_second * RATE_MARGIN))


class OutgoingLimits:
    """One bucket per chat, one more per group (``is_group`` tells which chats are), one for
    the whole bot."""

    def __init__(self, limits: SendLimits, is_group: Callable[[int], bool]) -> None:
        self.limits = limits
        self.is_group = is_group
        self.overall = _bucket(limits.global_per_second, limits.global_per_second)
        self._chats: dict[int, AsyncLimiter] = {}
        self._groups: dict[int, AsyncLimiter] = {}
        self._waiting: Counter[int] = Counter()

    def _buckets(self, chat_id: int) -> list[AsyncLimiter]:
        if len(self._chats) > MAX_IDLE_BUCKETS:
            self._forget_idle()
        chat = self._chats.get(chat_id)
        if chat is None:
            chat = self._chats[chat_id] = _bucket(self.limits.chat_per_second,
                                                  self.limits.chat_per_second)
        buckets = [chat]
        if self.is_group(chat_id):
            group = self._groups.get(chat_id)
            if group is None:
                group = self._groups[chat_id] = _bucket(self.limits.group_burst,
                                                        self.limits.group_per_minute / 60)
            buckets.append(group)
        return [*buckets, self.overall]

    def _forget_idle(self) -> None:
        for table in (self._chats, self._groups):
            for chat_id in [c for c, b in table.items()
                            if b.has_capacity(b.max_rate) and not self._waiting[c]]:
                del table[chat_id]

    async def wait(self, chat_id: int) -> None:
        """Take a slot for one message to ``chat_id``, once every limit allows it."""
        self._waiting[chat_id] += 1
        try:
            for bucket in self._buckets(chat_id):
                await bucket.acquire()
        finally:
            self._waiting[chat_id] -= 1
            if not self._waiting[chat_id]:
                del self._waiting[chat_id]

    def status_may_send(self, chat_id: int) -> bool:
        """Whether a status update may go now without delaying a result."""
        if self._waiting[chat_id]:
            return False
        for bucket in self._buckets(chat_id):
            reserve = 0.0 if bucket is self._chats.get(chat_id) else bucket.max_rate * \
                STATUS_RESERVE
            if not bucket.has_capacity(1 + reserve):
                return False
        return True
