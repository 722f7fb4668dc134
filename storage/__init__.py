"""Persistence behind a small interface (``storage.base.Storage``); SQLite is the default."""

from __future__ import annotations

from storage.base import Storage
from storage.sqlite import SQLiteStorage


def open_storage(url: str) -> Storage:
    """A storage for ``url`` (not yet opened); only ``sqlite:///PATH`` is built in."""
    if url.startswith("sqlite:///"):
        return SQLiteStorage(url.removeprefix("sqlite:///"))
    if url == "sqlite://":
        return SQLiteStorage(":memory:")
    raise ValueError(f"unsupported storage url {url!r} (use sqlite:///path/to/file.db)")


__all__ = ["SQLiteStorage", "Storage", "open_storage"]
