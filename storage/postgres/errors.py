"""What a PostgreSQL failure means to an operator, in a few words, and the error it becomes."""

from __future__ import annotations

import socket

import asyncpg

from bot.redact import redact, redact_url
from storage.errors import DatabaseDown

# Failures of the database rather than of the statement: the server is down, unreachable,
# out of connections or disk, refusing the login, read-only, or broke a conflict by aborting.
OUTAGES: tuple[type[BaseException], ...] = (
    OSError, TimeoutError, asyncpg.PostgresConnectionError, asyncpg.InsufficientResourcesError,
    asyncpg.OperatorInterventionError, asyncpg.TransactionRollbackError,
    asyncpg.ReadOnlySQLTransactionError, asyncpg.InvalidAuthorizationSpecificationError,
    asyncpg.InvalidCatalogNameError,
)
# Opening also fails on a malformed URL (asyncpg's ValueError, ClientConfigurationError).
OPEN_FAILURES: tuple[type[BaseException], ...] = (*OUTAGES, ValueError, asyncpg.InterfaceError)


def cause(exc: BaseException) -> str:
    """The cause of ``exc`` as an operator would name it ("the server refused the connection")."""
    if isinstance(exc, socket.gaierror):
        return "the host name does not resolve"
    if isinstance(exc, ConnectionRefusedError):
        return "the server refused the connection (is PostgreSQL running there?)"
    if isinstance(exc, TimeoutError):
        return "no answer in time"
    if isinstance(exc, asyncpg.PostgresError | asyncpg.InterfaceError | ValueError):
        # The server's own words ('password authentication failed for user "bot"',
        # 'database "x" does not exist', 'sorry, too many clients already').
        return redact(str(exc)) or type(exc).__name__
    if isinstance(exc, OSError):
        return f"the connection failed ({(exc.strerror or type(exc).__name__).lower()})"
    return type(exc).__name__


def unavailable(exc: BaseException, url: str) -> DatabaseDown:
    """The error naming the database and the cause, for operators."""
    return DatabaseDown(f"Cannot use the PostgreSQL database {redact_url(url)}: {cause(exc)}.")
