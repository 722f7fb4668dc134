"""Fixtures every backend test shares."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from bot.providers.http import make_client


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    """The shared client; backends pass their own timeouts, short ones here catch a stuck fake."""
    async with make_client(connect_timeout=2, read_timeout=5) as client:
        yield client
