"""Job metrics and transition log lines as a real job moves through the core."""

from __future__ import annotations

import logging
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from bot import metrics
from bot.app import running_app
from bot.config import build_config
from bot.events import Failed, Progress
from bot.jobs import GenerationRequest
from bot.models import ChatRef, UserRef
from tests.dead_process import left_running
from tests.fakes.a1111 import FakeA1111
from tests.fakes.server import FakeServer, jpeg_bytes


def value(name: str, **labels: str) -> float:
    found = metrics.REGISTRY.get_sample_value(name, labels)
    return 0.0 if found is None else found


async def test_a_failed_job_counts_its_error_class_and_its_refund(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    async with FakeA1111() as webui:
        config = build_config({
            "storage": {"url": f"sqlite:///{tmp_path / 'bot.db'}"},
            "credits": {"initial": 10, "daily_free": 0},
            "providers": {"webui": {"type": "a1111", "url": webui.base_url, "cost": 3,
                                    "retries": 1, "timeout": 10}}}, environ={})
        errors = value("img2img_provider_errors_total", provider="webui",
                       error="InvalidProviderRequest")
        refunded = value("img2img_credits_total", movement="refunded")
        failed = value("img2img_jobs_total", provider="webui", status="failed")
        webui.fail("validation")
        caplog.set_level(logging.INFO, logger="img2img-bot.jobs")
        async with running_app(config) as app:
            user = UserRef("telegram", "77")
            handle = await app.service.submit(GenerationRequest(
                user=user, chat=ChatRef("telegram", "77", private=True),
                image=jpeg_bytes((320, 240)), prompt="a harbour"))
            final = await handle.wait()
    assert isinstance(final, Failed)
    assert value("img2img_provider_errors_total", provider="webui",
                 error="InvalidProviderRequest") == errors + 1
    assert value("img2img_credits_total", movement="refunded") == refunded + 3
    assert value("img2img_jobs_total", provider="webui", status="failed") == failed + 1
    assert value("img2img_queue_depth", provider="webui") == 0
    assert value("img2img_jobs_running", provider="webui") == 0
    lines = [r for r in caplog.records if r.name == "img2img-bot.jobs"
             and getattr(r, "job_id", None) == handle.id]
    assert [getattr(r, "status", None) for r in lines] == ["queued", "running", "failed"]
    last = lines[-1]
    assert getattr(last, "user_key", None) == "telegram:77"
    assert getattr(last, "error", None) == "InvalidProviderRequest"
    assert getattr(last, "run_seconds", None) is not None
    assert "error InvalidProviderRequest" in last.getMessage()


async def test_queued_jobs_cancelled_or_left_at_a_stop_leave_the_gauges(tmp_path: Path) -> None:
    # One job running (a slow backend, one slot), two waiting behind it: one is cancelled, and
    # the bot stops with the others unfinished.
    async with FakeA1111(delay=30) as webui:
        config = build_config({
            "storage": {"url": f"sqlite:///{tmp_path / 'bot.db'}"},
            "credits": {"initial": 10, "daily_free": 0},
            "providers": {"slow": {"type": "a1111", "url": webui.base_url, "cost": 1,
                                   "max_concurrency": 1, "timeout": 60}}}, environ={})
        queued, running = (value("img2img_queue_depth", provider="slow"),
                           value("img2img_jobs_running", provider="slow"))
        cancelled = value("img2img_jobs_total", provider="slow", status="cancelled")
        refunded = value("img2img_credits_total", movement="refunded")
        async with running_app(config) as app:
            first, second, _ = [await app.service.submit(GenerationRequest(
                user=UserRef("telegram", user), chat=ChatRef("telegram", user, private=True),
                image=jpeg_bytes((320, 240)), prompt="a harbour")) for user in ("77", "78", "79")]
            async for event in first.events():
                if isinstance(event, Progress):  # the backend is at work on it
                    break
            assert value("img2img_jobs_running", provider="slow") == running + 1
            assert value("img2img_queue_depth", provider="slow") == queued + 2
            assert await app.service.cancel(second.id, "telegram:78")
            assert value("img2img_queue_depth", provider="slow") == queued + 1
            assert value("img2img_jobs_total", provider="slow",
                         status="cancelled") == cancelled + 1
            assert value("img2img_credits_total", movement="refunded") == refunded + 1
    assert value("img2img_queue_depth", provider="slow") == queued
    assert value("img2img_jobs_running", provider="slow") == running


async def test_jobs_a_crash_left_are_counted_as_refunded_at_start(tmp_path: Path) -> None:
    config = build_config({"storage": {"url": f"sqlite:///{tmp_path / 'bot.db'}"},
                           "providers": {"echo": {"type": "echo"}}}, environ={})
    async with running_app(config, start_workers=False) as app:  # the process that "crashed"
        await left_running(app, "dead1job", user_key="telegram:5", chat_key="telegram:5",
                           origin={}, attempts=2, price=4, provider="echo")
    refunded = value("img2img_credits_total", movement="refunded")
    interrupted = value("img2img_jobs_total", provider="echo", status="interrupted")
    async with running_app(config) as app:
        assert await app.storage.balance("telegram:5") == app.config.credits.initial
    assert value("img2img_credits_total", movement="refunded") == refunded + 4
    assert value("img2img_jobs_total", provider="echo", status="interrupted") == interrupted + 1


class StatusServer(FakeServer):
    """Answers ``/<status>`` with that HTTP status."""

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/{status}", self._answer)

    async def _answer(self, request: web.Request) -> web.Response:
        return web.Response(status=int(request.match_info["status"]))


async def test_a_platform_trace_counts_rate_limits_error_answers_and_network_failures() -> None:
    before = (value("img2img_platform_rate_limited_total", platform="chat"),
              value("img2img_platform_api_errors_total", platform="chat", kind="http_503"),
              value("img2img_platform_api_errors_total", platform="chat", kind="network"))
    async with StatusServer() as server, aiohttp.ClientSession(
            trace_configs=[metrics.platform_trace("chat")]) as session:
        for status in (200, 429, 503, 204):
            async with session.get(f"{server.base_url}/{status}") as response:
                assert response.status == status
        port = server.port
    with pytest.raises(aiohttp.ClientConnectionError):  # the server is gone: refused
        async with aiohttp.ClientSession(trace_configs=[metrics.platform_trace("chat")]) as s:
            await s.get(f"http://127.0.0.1:{port}/200")
    assert (value("img2img_platform_rate_limited_total", platform="chat"),
            value("img2img_platform_api_errors_total", platform="chat", kind="http_503"),
            value("img2img_platform_api_errors_total", platform="chat", kind="network")
            ) == (before[0] + 1, before[1] + 1, before[2] + 1)
