"""Backends that fail at random: the WebUI and Stability fakes with a failure drawn per call.

Each generation call fails with probability ``rate``; the kind is drawn from the fake's own
failure answers (HTTP errors, rate limits, malformed and truncated bodies, content filtered)
plus what no scripted answer can do: a hang until the client gives up, and a dropped
connection. A seeded ``random.Random`` makes a run repeatable; ``drawn`` counts every kind.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from contextvars import ContextVar
from typing import Any

from aiohttp import web

from tests.fakes.a1111 import FakeA1111
from tests.fakes.server import json_response
from tests.fakes.stability import FakeStability

# Kinds the WebUI fake answers itself, then the ones added here.
A1111_KINDS = ("server_error", "oom", "validation", "invalid_image", "unavailable",
               "rate_limited", "malformed", "not_an_image", "disconnect")
STABILITY_KINDS = ("filtered", "error_artifact", "rate", "balance", "payment", "moderation",
                   "forbidden", "server_error", "garbage")
EXTRA_KINDS = ("hang", "truncated")
# The kind drawn for the request being handled (aiohttp runs each request in its own task).
_KIND: ContextVar[str] = ContextVar("flaky_kind", default="ok")


class _Dice:
    """The draw shared by both fakes."""

    def __init__(self, kinds: tuple[str, ...], rate: float, seed: int) -> None:
        self.kinds = kinds + EXTRA_KINDS
        self.rate = rate
        self.rng = random.Random(seed)
        self.drawn: Counter[str] = Counter()
        self.released = asyncio.Event()

    def draw(self) -> str:
        kind = self.rng.choice(self.kinds) if self.rng.random() < self.rate else "ok"
        self.drawn[kind] += 1
        return kind

    async def hang(self) -> None:
        """Answer nothing until the server stops (the client's timeout ends the job)."""
        await self.released.wait()


def _truncated(body: dict[str, Any]) -> web.Response:
    """A 200 whose JSON stops half way, as when a proxy cuts a long answer."""
    text = json_response(body).text or ""
    return web.Response(status=200, text=text[: max(1, len(text) // 2)],
                        content_type="application/json")


class FlakyA1111(FakeA1111):
    """The WebUI fake; ``rate`` of img2img calls fail in a random way."""

    def __init__(self, *, rate: float = 0.3, seed: int = 0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.dice = _Dice(A1111_KINDS, rate, seed)

    @property
    def drawn(self) -> Counter[str]:
        return self.dice.drawn

    async def _img2img(self, request: web.Request) -> web.Response:
        kind = self.dice.draw()
        if kind == "hang":
            await request.read()
            await self.dice.hang()
            return web.Response(status=503)
        _KIND.set(kind)
        response = await super()._img2img(request)
        if kind == "truncated" and response.status == 200:
            return _truncated({"images": ["AAAA"] * 4, "info": "{}", "parameters": {}})
        return response

    def _next_failure(self) -> str | None:
        kind = _KIND.get()
        return kind if kind in A1111_KINDS else super()._next_failure()

    async def stop(self) -> None:
        self.dice.released.set()
        await super().stop()


class FlakyStability(FakeStability):
    """The Stability fake; ``rate`` of generation calls fail in a random way."""

    def __init__(self, api_key: str = "sk-test-key", *, rate: float = 0.3, seed: int = 0) -> None:
        super().__init__(api_key)
        self.dice = _Dice(STABILITY_KINDS, rate, seed)
        self.retry_after = "0"

    @property
    def drawn(self) -> Counter[str]:
        return self.dice.drawn

    async def v1_generate(self, request: web.Request) -> web.Response:
        kind = self.dice.draw()
        if kind == "hang":
            await request.read()
            await self.dice.hang()
            return web.Response(status=503)
        if kind == "truncated":
            await request.read()
            return _truncated({"artifacts": [{"base64": "AAAA", "seed": 1,
                                              "finishReason": "SUCCESS"}] * 3})
        _KIND.set(kind)
        return await super().v1_generate(request)

    def next_outcome(self) -> str:
        kind = _KIND.get()
        return kind if kind in STABILITY_KINDS else super().next_outcome()

    async def stop(self) -> None:
        self.dice.released.set()
        await super().stop()
