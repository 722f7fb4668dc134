"""``/healthz`` and ``/metrics`` of a running bot, read over HTTP as a probe or Prometheus would."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from bot import metrics
from tests.fakes.server import jpeg_bytes
from tests.fakes.telegram_api import TOKEN, FakeTelegram
from tests.telegram.bot_process import bot_process, free_port
from tests.telegram.conftest import USER_ID, Harness
from tests.texts import pattern


def sample(metrics: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus' text format (0 when it is absent)."""
    wanted = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
    for line in metrics.splitlines():
        if line.startswith("#"):
            continue
        key, _, value = line.rpartition(" ")
        metric, _, label_text = key.partition("{")
        got = ",".join(sorted(label_text.rstrip("}").split(","))) if label_text else ""
        if metric == name and got == wanted:
            return float(value)
    return 0.0


async def wait_for_status(client: httpx.AsyncClient, url: str, status: int,
                          timeout: float = 30) -> httpx.Response:
    async with asyncio.timeout(timeout):
        while True:
            try:
                response = await client.get(url)
            except httpx.TransportError:
                response = None
            if response is not None and response.status_code == status:
                return response
            await asyncio.sleep(0.2)


async def test_health_and_metrics_follow_the_bot(fake: FakeTelegram, tmp_path: Path) -> None:
    port = free_port()
    environ = {"TELEGRAM_BOT_TOKEN": TOKEN, "IMG2IMG_TELEGRAM__API_BASE": fake.base_url,
               "IMG2IMG_TELEGRAM__PROGRESS_INTERVAL": "0.1",
               "IMG2IMG_PROVIDERS__ECHO__TYPE": "echo", "IMG2IMG_PROVIDERS__ECHO__COST": "2",
               "IMG2IMG_HTTP__ENABLED": "true", "IMG2IMG_HTTP__PORT": str(port)}
    base = f"http://127.0.0.1:{port}"
    async with bot_process("run", environ=environ, cwd=tmp_path) as bot, \
            httpx.AsyncClient(timeout=10) as client:
        healthy = await wait_for_status(client, f"{base}/healthz", 200)
        report = healthy.json()
        assert report["ok"] is True
        assert set(report["parts"]) == {"storage", "workers", "telegram"}
        assert "@img2img_test_bot" in report["parts"]["telegram"]["detail"]

        before = (await client.get(f"{base}/metrics")).text
        assert sample(before, "img2img_jobs_total", provider="echo", status="delivered") == 0
        update = fake.push_update(fake.build.photo(jpeg_bytes((320, 240)),
                                                   caption="/img2img a lighthouse"))
        await fake.wait_for_message(
            USER_ID, lambda m: m.kind == "photo"
            and m.reply_to_message_id == update["message"]["message_id"], timeout=20)
        async with asyncio.timeout(10):
            while True:
                after = (await client.get(f"{base}/metrics")).text
                if sample(after, "img2img_jobs_total", provider="echo", status="delivered"):
                    break
                await asyncio.sleep(0.1)
        assert sample(after, "img2img_jobs_total", provider="echo", status="queued") == 1
        assert sample(after, "img2img_credits_total", movement="spent") == 2
        assert sample(after, "img2img_job_run_seconds_count", provider="echo") == 1
        assert sample(after, "img2img_job_wait_seconds_count", provider="echo") == 1
        assert sample(after, "img2img_queue_depth", provider="echo") == 0
        assert sample(after, "img2img_jobs_running", provider="echo") == 0
        job_lines = [line for line in bot.lines if "img2img-bot.jobs" in line]
        assert [line.split(": ", 1)[1].split(":")[0].split()[-1] for line in job_lines] == \
            ["queued", "running", "delivered"]
        assert "user telegram:" in job_lines[-1] and "ran " in job_lines[-1]

        await fake.stop()  # the Bot API goes away
        down = await wait_for_status(client, f"{base}/healthz", 503)
        report = down.json()
        assert report["ok"] is False and report["failing"] == ["telegram"]
        assert report["parts"]["storage"]["ok"] and report["parts"]["workers"]["ok"]
        assert "unreachable" in report["parts"]["telegram"]["detail"]
        errors = (await client.get(f"{base}/metrics")).text
        assert sample(errors, "img2img_platform_api_errors_total", platform="telegram",
                      kind="network") >= 1
        code = await bot.stop()
    assert code == 0, bot.log
    assert TOKEN not in bot.log


async def test_a_429_from_telegram_is_counted(tg: Harness) -> None:
    def rate_limited() -> float:
        return sample(metrics.render()[0].decode(), "img2img_platform_rate_limited_total",
                      platform="telegram")

    before = rate_limited()
    tg.fake.fail_next("sendPhoto", 429, retry_after=1)
    await tg.result(tg.send(tg.fake.build.photo(caption="/img2img a cat")), timeout=6)
    assert rate_limited() == before + 1


async def test_in_webhook_mode_one_server_takes_updates_and_health(
        fake: FakeTelegram, tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    environ = {"TELEGRAM_BOT_TOKEN": TOKEN, "IMG2IMG_TELEGRAM__API_BASE": fake.base_url,
               "IMG2IMG_TELEGRAM__MODE": "webhook",
               "IMG2IMG_TELEGRAM__WEBHOOK": f'{{"url": "{base}/tg", "path": "/tg", '
                                            f'"host": "127.0.0.1", "port": {port}, '
                                            f'"secret_token": "hook-secret-123"}}',
               "IMG2IMG_PROVIDERS__ECHO__TYPE": "echo"}
    async with bot_process("run", environ=environ, cwd=tmp_path) as bot, \
            httpx.AsyncClient(timeout=10) as client:
        registered = await fake.wait_for_call("setWebhook", timeout=60)
        assert registered.params["url"] == f"{base}/tg"
        await wait_for_status(client, f"{base}/healthz", 200)  # the webhook's port, [http] off
        update = fake.build.text("/start")
        assert await fake.deliver_webhook(None, update, secret_token="wrong") == 401
        assert await fake.deliver_webhook(None, update, secret_token="hook-secret-123") == 200
        await fake.wait_for_message(  # the /start answer, sent through the webhook's reply
            USER_ID, lambda m: pattern("tg-start-hello").search(m.text or "") is not None,
            timeout=20)
        metrics_page = await client.get(f"{base}/metrics")
        assert metrics_page.status_code == 200 and "img2img_queue_depth" in metrics_page.text
        assert await bot.stop() == 0, bot.log
