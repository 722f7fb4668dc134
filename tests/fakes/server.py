"""The bases every fake server shares: an aiohttp app on 127.0.0.1 at an ephemeral port."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
from dataclasses import dataclass
from typing import Any, Self

from aiohttp import web
from PIL import Image

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JPEG_MAGIC = b"\xff\xd8\xff"


class FakeServer:
    """Subclasses add routes in ``routes``; ``start`` returns the base URL."""

    def __init__(self) -> None:
        self.runner: web.AppRunner | None = None
        self.base_url = ""
        self.port = 0
        self.requests: list[tuple[str, str]] = []  # (method, path) of every request seen

    def routes(self, app: web.Application) -> None:
        raise NotImplementedError

    @web.middleware
    async def _record(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.requests.append((request.method, request.path))
        response: web.StreamResponse = await handler(request)
        return response

    async def start(self) -> str:
        app = web.Application(client_max_size=64 * 1024 * 1024, middlewares=[self._record])
        self.routes(app)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]
        self.base_url = f"http://127.0.0.1:{self.port}"
        return self.base_url

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


@dataclass
class Seen:
    """One request as a fake received it, body included."""

    method: str
    url: str
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True)
class HeaderKey:
    """The API key a fake expects in one header, after a prefix such as ``"Bearer "``."""

    key: str
    header: str = "Authorization"
    prefix: str = "Bearer "

    def allows(self, request: web.Request) -> bool:
        return request.headers.get(self.header) == f"{self.prefix}{self.key}"


class RecordingServer(FakeServer):
    """A fake that also keeps every request whole in ``seen``, to check what reached the wire.

    Only for JSON APIs: reading the body here leaves a multipart form unreadable to the handler.
    """

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[Seen] = []

    @web.middleware
    async def _record(self, request: web.Request, handler: Any) -> web.StreamResponse:
        body = await request.read()
        self.seen.append(Seen(request.method, str(request.url), dict(request.headers), body))
        return await super()._record(request, handler)  # type: ignore[no-any-return]


class ScriptedServer(FakeServer):
    """A fake whose next answers are scripted with ``plan`` and slowed by ``delay`` seconds.

    Handlers take ``next_outcome()`` ("ok" when nothing is planned) and ``await hold()`` first;
    scripted 429s carry ``retry_after`` as their Retry-After header.
    """

    def __init__(self) -> None:
        super().__init__()
        self.outcomes: list[str] = []
        self.delay = 0.0
        self.retry_after = "0.05"
        self._release = asyncio.Event()

    def plan(self, *outcomes: str) -> None:
        self.outcomes.extend(outcomes)

    def next_outcome(self) -> str:
        return self.outcomes.pop(0) if self.outcomes else "ok"

    async def hold(self) -> None:
        """Wait ``delay`` seconds, or less when the server stops."""
        if self.delay:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._release.wait(), self.delay)

    async def stop(self) -> None:
        self._release.set()  # let slow handlers finish so shutdown is quick
        await super().stop()


def json_response(body: Any, status: int = 200, **headers: str) -> web.Response:
    """JSON with the exact ``application/json`` content type (discord.py needs it bare)."""
    return web.Response(body=json.dumps(body).encode(), status=status,
                        content_type="application/json", headers=headers)


def png_bytes(size: tuple[int, int] = (64, 48),
              color: tuple[int, int, int] = (30, 120, 200)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "PNG")
    return buf.getvalue()


def jpeg_bytes(size: tuple[int, int] = (64, 48),
               color: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "JPEG")
    return buf.getvalue()


async def stream_png_then_zeros(request: web.Request, size: int) -> web.StreamResponse:
    """A body that claims to be a PNG and runs on for ``size`` bytes, sent chunk by chunk."""
    response = web.StreamResponse(headers={"Content-Type": "image/png"})
    await response.prepare(request)
    await response.write(PNG_MAGIC)
    chunk = bytes(1024 * 1024)
    sent = 0
    try:
        while sent < size:
            await response.write(chunk[: size - sent])
            sent += len(chunk)
    except (ConnectionResetError, RuntimeError):
        return response  # the client hung up: what a capped download does
    await response.write_eof()
    return response


class InternalServer(FakeServer):
    """A service inside the operator's network that no outside URL may reach.

    It serves a PNG at ``/secret.png`` and ``requests`` is its
    access log, which the SSRF tests expect to stay empty.
    """

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/secret.png", self._secret)

    async def _secret(self, request: web.Request) -> web.Response:
        return web.Response(body=png_bytes((32, 32), (255, 0, 0)), content_type="image/png")


class RedirectServer(FakeServer):
    """Answers every GET with a 302 to ``target`` (a public-looking hop into the inside)."""

    def __init__(self, target: str = "") -> None:
        super().__init__()
        self.target = target

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/{tail:.*}", self._redirect)

    async def _redirect(self, request: web.Request) -> web.Response:
        raise web.HTTPFound(self.target)
