"""The base every fake server shares: an aiohttp app on 127.0.0.1 at an ephemeral port."""

from __future__ import annotations

import io
import json
from typing import Any

from aiohttp import web
from PIL import Image


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

    async def __aenter__(self) -> FakeServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


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
