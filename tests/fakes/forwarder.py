"""A round-robin HTTP forwarder: the load balancer in front of several webhook gateways.

    with RoundRobinForwarder() as lb:             # 127.0.0.1:<ephemeral>, its own thread
        lb.set_backends(["http://127.0.0.1:8001", "http://127.0.0.1:8002"])
        ... point the webhook at lb.base_url + "/telegram/webhook" ...
        lb.forwarded                              # backend index of every request passed on

Each request goes to the next backend in turn with its method, path, headers and body; the
backend's answer comes back as it is. A backend that refuses the connection is skipped for
the next one, as a load balancer's health check would (a 502 only when all refuse). It runs
in a thread with its own event loop, so that a busy test loop does not slow the traffic.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
from typing import Self

import aiohttp
from aiohttp import web

_HOP_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection"})


class RoundRobinForwarder:
    """See the module docstring."""

    def __init__(self) -> None:
        self.base_url = ""
        self.forwarded: list[int] = []
        self._backends: list[str] = []
        self._turn = itertools.count()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="forwarder",
                                        daemon=True)
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    def set_backends(self, urls: list[str]) -> None:
        self._backends = list(urls)

    async def _forward(self, request: web.Request) -> web.Response:
        assert self._session is not None
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_HEADERS}
        for _ in range(len(self._backends)):
            index = next(self._turn) % len(self._backends)
            try:
                async with self._session.request(
                        request.method, self._backends[index] + request.rel_url.path_qs,
                        data=body, headers=headers) as answer:
                    payload = await answer.read()
                    self.forwarded.append(index)
                    return web.Response(body=payload, status=answer.status,
                                        content_type=answer.content_type)
            except aiohttp.ClientConnectionError:
                continue
        return web.Response(status=502, text="no backend answered")

    async def _start(self) -> None:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60))
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        assert site._server is not None
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        self.base_url = f"http://127.0.0.1:{port}"

    async def _stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    def __enter__(self) -> Self:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()
