"""Storage as the core uses it: storage's own errors become the core's (one error tree)."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable
from typing import Any, cast

from bot.errors import EventHandled, InsufficientCredits, StorageUnavailable
from storage import Storage
from storage.errors import DatabaseDown, EventSeen, NotEnoughCredits


class _Mapped:
    """Forwards every call to the storage; a coroutine method's storage error is re-raised as
    the core's. Generic forwarding keeps this in step with the ``Storage`` protocol without a
    second list of its methods."""

    def __init__(self, inner: Storage) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._inner, name)
        if inspect.iscoroutinefunction(value):
            value = _mapping(value)
            setattr(self, name, value)  # wrapped once per method, not per call
        return value


def _mapping(call: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    @functools.wraps(call)
    async def mapped(*args: Any, **kwargs: Any) -> Any:
        try:
            return await call(*args, **kwargs)
        except DatabaseDown as exc:
            # The detail says it all; nothing chained can then carry a driver's text.
            raise StorageUnavailable(detail=exc.detail) from None
        except NotEnoughCredits as exc:
            raise InsufficientCredits(exc.price, exc.balance) from exc
        except EventSeen as exc:
            raise EventHandled() from exc

    return mapped


def core_storage(inner: Storage) -> Storage:
    """``inner`` raising the core's errors; mapping an already mapped storage is a no-op."""
    if isinstance(inner, _Mapped):
        return inner
    # _Mapped has every method of ``inner`` by forwarding, which mypy cannot see.
    return cast(Storage, _Mapped(inner))
