"""What a job tells the adapter as it moves; the adapter renders these."""

from __future__ import annotations

from dataclasses import dataclass

from bot.errors import BotError
from bot.models import ImageData, Params


@dataclass(frozen=True, slots=True)
class Queued:
    position: int  # 1 = next to start


@dataclass(frozen=True, slots=True)
class Started:
    pass


@dataclass(frozen=True, slots=True)
class Progress:
    fraction: float | None
    eta: float | None = None
    text: str | None = None


@dataclass(frozen=True, slots=True)
class Done:
    """The result, delivered (or, handed to a courier, about to be)."""

    images: tuple[ImageData, ...]
    seed: int | None
    cost: int
    balance: int | None
    params: Params
    provider_label: str
    notices: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Failed:
    error: BotError
    refunded: bool
    balance: int | None

    @property
    def message(self) -> str:
        return self.error.user_message


@dataclass(frozen=True, slots=True)
class Detached:
    """The job goes on without this process following it: its result waits in the outbox
    for another delivery attempt (``notice`` says so to the user), or another process took
    it from the queue (no notice: that process shows it from now on)."""

    notice: str | None = None


JobEvent = Queued | Started | Progress | Done | Failed | Detached
FINAL = (Done, Failed, Detached)
