"""The one HTTP server of a running bot: ``/healthz``, ``/metrics`` and, in webhook mode,
the path Telegram posts updates to."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from aiohttp import web

from bot import metrics
from bot.errors import ConfigError, StorageUnavailable
from bot.redact import redact

if TYPE_CHECKING:
    from bot.app import App

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
STORAGE_TIMEOUT = 5.0


class LateRoute:
    """A route added before the server starts whose handler comes later (the webhook's
    needs the Telegram bot, which the adapter builds); until then it answers 503."""

    def __init__(self) -> None:
        self.handler: Handler | None = None

    async def __call__(self, request: web.Request) -> web.StreamResponse:
        if self.handler is None:
            return web.Response(status=503, text="starting")
        return await self.handler(request)


@asynccontextmanager
async def standalone_post(host: str, port: int, path: str) -> AsyncIterator[LateRoute]:
    """A server of its own with one POST route, for a webhook off the bot's HTTP server."""
    route = LateRoute()
    server = web.Application()
    server.router.add_post(path, route.__call__)  # a coroutine function, as aiohttp expects
    runner = web.AppRunner(server)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        log.info("webhook server listening on %s:%s%s", host, port, path)
        yield route
    finally:
        await runner.cleanup()


async def health_report(app: App) -> dict[str, Any]:
    """Every part's state; ``ok`` only when storage answers, each configured platform is
    connected and every worker is alive."""
    parts: dict[str, dict[str, Any]] = {}
    try:
        # A primary-key read: cheap on any database size, and it fails when storage does.
        await asyncio.wait_for(app.storage.balance("health:probe"), STORAGE_TIMEOUT)
    except StorageUnavailable as exc:  # the operator's line: which database, and why
        parts["storage"] = {"ok": False, "detail": redact(exc.detail)[:200]}
    except Exception as exc:  # whatever the failure, the answer is "storage is down"
        parts["storage"] = {"ok": False, "detail": redact(f"{type(exc).__name__}: {exc}")[:200]}
    else:
        parts["storage"] = {"ok": True, "detail": "answering"}
    alive = app.service.workers_alive()
    parts["workers"] = {"ok": alive, "detail": "running" if alive else "a worker has stopped"}
    for platform, state in app.health.platforms().items():
        parts[platform] = {"ok": state.ok, "detail": state.detail, "since": state.since}
    return {"ok": all(part["ok"] for part in parts.values()), "parts": parts}


class WebServer:
    """Serves health and metrics for ``app`` on ``host:port``."""

    def __init__(self, app: App, host: str, port: int) -> None:
        self.app = app
        self.host = host
        self.port = port
        self.web = web.Application()
        self.web.router.add_get("/healthz", self._healthz)
        self.web.router.add_get("/metrics", self._metrics)
        self._runner: web.AppRunner | None = None

    def late_post(self, path: str) -> LateRoute:
        """A POST route whose handler is set after start (see ``LateRoute``)."""
        route = LateRoute()
        self.web.router.add_post(path, route)
        return route

    async def start(self) -> None:
        self._runner = web.AppRunner(self.web, access_log=None)
        await self._runner.setup()
        try:
            await web.TCPSite(self._runner, self.host, self.port).start()
        except OSError as exc:
            await self.stop()
            raise ConfigError(f"http: cannot listen on {self.host}:{self.port} "
                              f"({exc.strerror or exc}); set [http] port "
                              "(IMG2IMG_HTTP__PORT) to a free one") from exc
        log.info("health and metrics on http://%s:%s/healthz and /metrics", self.host, self.port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _healthz(self, _: web.Request) -> web.Response:
        report = await health_report(self.app)
        if not report["ok"]:
            failing = [name for name, part in report["parts"].items() if not part["ok"]]
            report["failing"] = failing
        return web.json_response(report, status=200 if report["ok"] else 503)

    async def _metrics(self, _: web.Request) -> web.Response:
        body, content_type = metrics.render()
        response = web.Response(body=body)
        response.headers["Content-Type"] = content_type
        return response
