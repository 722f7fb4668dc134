"""The storage contract runs on every backend: SQLite, and PostgreSQL on the test server."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from storage import PostgresStorage, SQLiteStorage, Storage
from tests.postgres_server import fresh_database

BACKENDS = ("sqlite", "postgres")


@pytest.fixture(params=BACKENDS)
async def backend(request: pytest.FixtureRequest,
                  tmp_path: Path) -> AsyncIterator[Callable[[], Storage]]:
    """A factory of storages on one empty database: each call is another process's."""
    if request.param == "sqlite":
        yield lambda: SQLiteStorage(tmp_path / "test.db")
        return
    async with fresh_database(request.getfixturevalue("postgres_server")) as url:
        yield lambda: PostgresStorage(url)


@pytest.fixture
async def store(backend: Callable[[], Storage]) -> AsyncIterator[Storage]:
    """Each backend, empty and open."""
    storage = backend()
    await storage.open()
    yield storage
    await storage.close()
