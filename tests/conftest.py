"""Shared test setup: a guard against non-loopback hosts, and a PostgreSQL server on demand."""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from tests.postgres_server import HOW_TO_RUN, fresh_database, some_server

_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


def _allowed(address: Any) -> bool:
    if isinstance(address, str | bytes):  # AF_UNIX path
        return True
    host = address[0]
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _guarded_connect(self: socket.socket, address: Any) -> Any:
    if not _allowed(address):
        raise ConnectionRefusedError(f"tests may not reach {address!r}: fake the network")
    return _real_connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: Any) -> Any:
    if not _allowed(address):
        raise ConnectionRefusedError(f"tests may not reach {address!r}: fake the network")
    return _real_connect_ex(self, address)


@pytest.fixture(autouse=True)
def _network_guard(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket.socket, "connect", _guarded_connect)
    monkeypatch.setattr(socket.socket, "connect_ex", _guarded_connect_ex)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A PostgreSQL server's URL: $IMG2IMG_TEST_POSTGRES_URL, or one started for this session.

    In CI (``CI`` or the URL set) a missing server fails the tests; elsewhere they skip.
    """
    with some_server() as url:
        if url is None:
            if os.environ.get("CI"):
                pytest.fail(f"PostgreSQL is required in CI: {HOW_TO_RUN}")
            pytest.skip(f"PostgreSQL tests need a server: {HOW_TO_RUN}")
        yield url


@pytest.fixture
async def postgres_url(postgres_server: str) -> AsyncIterator[str]:
    """The URL of a new, empty database for this test alone."""
    async with fresh_database(postgres_server) as url:
        yield url
