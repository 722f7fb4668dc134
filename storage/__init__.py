"""Persistence behind a small interface (``storage.base.Storage``); SQLite is the default."""

from __future__ import annotations

from storage.base import Storage
from storage.postgres import PostgresStorage
from storage.sqlite import SQLiteStorage

POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def open_storage(url: str) -> Storage:
    """A storage for ``url`` (not yet opened), chosen by its scheme."""
    if url.startswith("sqlite:///"):
        return SQLiteStorage(url.removeprefix("sqlite:///"))
    if url == "sqlite://":
        return SQLiteStorage(":memory:")
    if url.startswith(POSTGRES_SCHEMES):
        return PostgresStorage(url)
    # Only the scheme: the rest of a URL may hold a password.
    raise ValueError(f"unsupported storage url scheme {url.partition('://')[0]!r} "
                     "(use sqlite:///path/to/file.db or postgresql://user:password@host/db)")


__all__ = ["PostgresStorage", "SQLiteStorage", "Storage", "open_storage"]
