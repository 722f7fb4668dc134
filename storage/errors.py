"""What storage raises on purpose; the core maps each onto its own error tree (``bot.store``)."""

from __future__ import annotations


class StorageError(Exception):
    """The base of storage's own errors."""


class DatabaseDown(StorageError):
    """The database cannot be used; ``detail`` names which one and why, never a password."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class NotEnoughCredits(StorageError):
    """A reservation the user's balance does not cover (nothing was written)."""

    def __init__(self, price: int, balance: int) -> None:
        super().__init__(f"price {price} exceeds balance {balance}")
        self.price = price
        self.balance = balance


class EventSeen(StorageError):
    """A platform event that already made its job (a redelivery); nothing was written."""


class QueueLimitReached(StorageError):
    """``create_job`` refused: ``scope`` is "total" or "user"; ``count`` jobs are unfinished."""

    def __init__(self, scope: str, count: int) -> None:
        super().__init__(scope, count)
        self.scope = scope
        self.count = count
