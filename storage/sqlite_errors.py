"""What an SQLite failure means to an operator, in a few words, and the error it becomes."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from storage.errors import DatabaseDown


def _writable(path: str) -> bool:
    target = Path(path)
    # os.access reports a read-only mount (EROFS) even to root, unlike the permission bits.
    return os.access(target if target.exists() else target.parent, os.W_OK)


def cause(exc: sqlite3.Error, path: str) -> str:
    """The cause of ``exc`` as an operator would name it ("the disk is full")."""
    name = getattr(exc, "sqlite_errorname", "") or ""
    if name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")):
        return "the file is corrupt or not an SQLite database"
    # With WAL, a full disk usually shows first as the shared-memory file failing to grow.
    if name.startswith("SQLITE_FULL") or name == "SQLITE_IOERR_SHMSIZE":
        return "the disk is full"
    if name.startswith("SQLITE_READONLY") or (
            name.startswith("SQLITE_CANTOPEN") and not _writable(path)):
        return "the file or its folder is read-only"
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        return "it is locked by another program"
    if name.startswith("SQLITE_CANTOPEN"):
        return "the file cannot be opened"
    if name.startswith("SQLITE_IOERR"):
        return "a disk I/O error"
    return str(exc) or type(exc).__name__


def unavailable(exc: sqlite3.Error | OSError, path: str) -> DatabaseDown:
    """The error naming the file and the cause, for operators."""
    why = cause(exc, path) if isinstance(exc, sqlite3.Error) else (
        exc.strerror or type(exc).__name__).lower()
    return DatabaseDown(f"Cannot use the SQLite database {path}: {why}.")
