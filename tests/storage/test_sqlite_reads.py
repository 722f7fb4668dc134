"""SQLite answers settings reads on the event loop: never behind a write that waits for a lock."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from storage import SQLiteStorage


async def test_settings_are_read_while_a_write_waits_for_another_programs_lock(
        tmp_path: Path) -> None:
    storage = SQLiteStorage(tmp_path / "bot.db")
    await storage.open()
    try:
        await storage.set_user_settings("telegram:1", {"steps": 30})
        other = sqlite3.connect(tmp_path / "bot.db", isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # another program holds the write lock
        try:
            # This write waits on the connection's thread, up to the busy timeout (5 s).
            write = asyncio.create_task(storage.set_user_settings("telegram:2", {"steps": 9}))
            await asyncio.sleep(0.2)
            assert not write.done()
            read = await asyncio.wait_for(storage.user_settings("telegram:1"), 1.0)
            assert read == {"steps": 30}
            assert await asyncio.wait_for(storage.chat_settings("telegram:-5"), 1.0) == {}
        finally:
            other.execute("ROLLBACK")
            other.close()
        await asyncio.wait_for(write, 5.0)
        assert await storage.user_settings("telegram:2") == {"steps": 9}
    finally:
        await storage.close()


async def test_an_in_memory_database_reads_its_own_settings() -> None:
    """A second connection to ``:memory:`` would be another, empty database: none is made."""
    storage = SQLiteStorage(":memory:")
    await storage.open()
    try:
        await storage.set_user_settings("telegram:1", {"steps": 30})
        assert await storage.user_settings("telegram:1") == {"steps": 30}
    finally:
        await storage.close()
