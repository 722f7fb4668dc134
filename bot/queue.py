"""The fair job queue: one lane per provider, round robin between users inside a lane."""

from __future__ import annotations

import asyncio
from collections import OrderedDict, deque
from typing import Generic, Protocol, TypeVar


class Queueable(Protocol):
    @property
    def id(self) -> str: ...


J = TypeVar("J", bound=Queueable)


class Lane(Generic[J]):
    """Jobs for one provider: a user with ten jobs cannot starve the next user's one."""

    def __init__(self) -> None:
        self._users: OrderedDict[str, deque[J]] = OrderedDict()
        self._ready = asyncio.Event()

    def __len__(self) -> int:
        return sum(len(jobs) for jobs in self._users.values())

    def add(self, user_key: str, job: J) -> None:
        self._users.setdefault(user_key, deque()).append(job)
        self._ready.set()

    def remove(self, job_id: str) -> bool:
        for user_key, jobs in self._users.items():
            for job in jobs:
                if job.id == job_id:
                    jobs.remove(job)
                    if not jobs:
                        del self._users[user_key]
                    return True
        return False

    def order(self) -> list[J]:
        """Jobs in the order they will start."""
        rounds = [list(jobs) for jobs in self._users.values()]
        out: list[J] = []
        depth = 0
        while True:
            layer = [jobs[depth] for jobs in rounds if len(jobs) > depth]
            if not layer:
                return out
            out.extend(layer)
            depth += 1

    def positions(self) -> dict[str, int]:
        return {job.id: index + 1 for index, job in enumerate(self.order())}

    async def take(self) -> J:
        """The next job: the first user's oldest job; that user then goes to the back."""
        while not self._users:
            self._ready.clear()
            await self._ready.wait()
        user_key, jobs = next(iter(self._users.items()))
        job = jobs.popleft()
        if jobs:
            self._users.move_to_end(user_key)
        else:
            del self._users[user_key]
        return job
