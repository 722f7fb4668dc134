"""Known secrets never show: not in a log line at DEBUG, a user message, or a provider request.

A Telegram bot token, a webhook secret and three backend credentials (a Stability key, a
KellyAPI key, a WebUI password) are configured; jobs then run into every failure that could
carry a secret back: servers that quote the key in their errors, a proxy that repeats the
Authorization header, refused keys, malformed answers. Checked in process (the logging set up
as the CLI does it, the events users see, every request the shared HTTP client sent and the
fakes received) and in a real ``python -m bot`` process at DEBUG.
"""

from __future__ import annotations

import asyncio
import base64
import io
import logging
import os
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web
from pydantic import SecretStr

from bot.app import running_app
from bot.config import build_config
from bot.errors import BotError
from bot.events import Done, Failed
from bot.jobs import GenerationRequest
from bot.logs import make_formatter
from bot.models import ChatRef, UserRef
from bot.options import Overrides
from bot.presenter import failure_text
from bot.providers.base import HttpProviderSettings
from bot.redact import install_log_redaction
from tests.fakes.a1111 import FakeA1111, api_error
from tests.fakes.kellyapi import FakeKellyAPI
from tests.fakes.server import jpeg_bytes
from tests.fakes.stability import FakeStability

TOKEN = "7345678901:AAH3kF9sTqPzXw2LmN8vB5cD1eR6tY4uI0o"
WEBHOOK_SECRET = "whsec-0a1b2c3d4e5f6a7b8c9d"
STAB_KEY = "sk-STABsecret9f8e7d6c5b4a3210"
KELLY_KEY = "kelly-SECRET-4b5c6d7e8f90a1b2"
WEBUI_USER, WEBUI_PASSWORD = "bot", "webui-Pa55-7c1d9e2f"
SECRETS = (TOKEN, TOKEN.split(":")[1], WEBHOOK_SECRET, STAB_KEY, KELLY_KEY, WEBUI_PASSWORD)
BASIC = base64.b64encode(f"{WEBUI_USER}:{WEBUI_PASSWORD}".encode()).decode()
# Where each backend credential may legitimately appear: its own auth header.
OWN_HEADER = {STAB_KEY: f"Bearer {STAB_KEY}", KELLY_KEY: f"Bearer {KELLY_KEY}",
              WEBUI_PASSWORD: f"Basic {BASIC}"}


class LeakyA1111(FakeA1111):
    """A WebUI behind a debugging proxy that quotes the credentials it got in its errors."""

    def __init__(self) -> None:
        super().__init__(auth=(WEBUI_USER, WEBUI_PASSWORD))
        self.leaks = 0
        self.headers: list[dict[str, str]] = []

    async def _img2img(self, request: web.Request) -> web.Response:
        self.headers.append(dict(request.headers))
        if self.leaks:
            self.leaks -= 1
            await request.read()
            header = request.headers.get("Authorization", "")
            decoded = base64.b64decode(header.removeprefix("Basic ")).decode()
            return api_error(500, "RuntimeError", f"upstream refused {header}",
                             f"credentials {decoded} were rejected by {header}")
        return await super()._img2img(request)


def leaked(text: str) -> list[str]:
    return [secret for secret in SECRETS if secret in text]


def _config(tmp: Path, stab: str, kelly: str, webui: str, *, log_level: str = "INFO",
            log_format: str = "text") -> Any:
    return {
        "storage": {"url": f"sqlite:///{tmp / 'bot.db'}"},
        "logging": {"level": log_level, "format": log_format},
        # doctor asks the Bot API for getMe: a closed local port, never the real one.
        "telegram": {"mode": "webhook", "api_base": "http://127.0.0.1:9",
                     "webhook": {"url": "https://bot.example.org/hook"}},
        "credits": {"initial": 100, "daily_free": 0},
        "defaults": {"provider": "stab"},
        "providers": {
            "stab": {"type": "stability", "url": stab, "api_version": "v1", "timeout": 10,
                     "retries": 1},
            "kelly": {"type": "kellyapi", "url": kelly, "timeout": 10, "retries": 1},
            "webui": {"type": "a1111", "url": webui, "username": WEBUI_USER, "timeout": 10,
                      "retries": 1, "poll_interval": 0.2},
        },
    }


ENVIRON = {"TELEGRAM_BOT_TOKEN": TOKEN, "STAB_API_KEY": STAB_KEY, "KELLY_API_KEY": KELLY_KEY,
           "WEBUI_PASSWORD": WEBUI_PASSWORD}


@pytest.fixture(params=["text", "json"])
def debug_log(request: pytest.FixtureRequest) -> Iterator[io.StringIO]:
    """The root logger at DEBUG with a handler set up as ``bot.cli`` sets up its own, in
    both log formats."""
    root = logging.getLogger()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(make_formatter(request.param))
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    install_log_redaction()
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


async def test_no_secret_in_logs_messages_or_requests(tmp_path: Path,
                                                      debug_log: io.StringIO) -> None:
    sent: list[str] = []

    async def record(request: httpx.Request) -> None:
        body = (await request.aread()).decode("latin-1")
        sent.append(f"{request.method} {request.url}\n{dict(request.headers)}\n{body}")

    messages: list[str] = []
    async with FakeStability(STAB_KEY) as stab, FakeKellyAPI(KELLY_KEY) as kelly, \
            LeakyA1111() as webui:
        raw = _config(tmp_path, stab.base_url, kelly.base_url, webui.base_url)
        raw["telegram"]["webhook"]["secret_token"] = WEBHOOK_SECRET
        config = build_config(raw, environ=ENVIRON)
        assert not leaked(repr(config)) and not leaked(str(config.model_dump()))
        stab.plan("echo_key", "forbidden", "server_error", "garbage", "filtered", "ok")
        kelly.plan("echo_key", "credits", "nsfw", "bad_gateway", "garbage", "ok")
        webui.leaks = 2
        webui.fail("server_error")
        async with running_app(config) as app:
            app.http.event_hooks["request"].append(record)
            user = UserRef("telegram", "5")
            for provider, count in (("stab", 6), ("kelly", 6), ("webui", 4)):
                for index in range(count):
                    handle = await app.service.submit(GenerationRequest(
                        user=user, chat=ChatRef("telegram", "5", private=True),
                        image=jpeg_bytes((320, 240)), prompt=f"a {provider} job {index}",
                        overrides=Overrides(provider=provider)))
                    final = await handle.wait()
                    if isinstance(final, Failed):
                        messages.append(failure_text(final))
                    else:
                        assert isinstance(final, Done)
                        messages.extend(final.notices)
            for name, provider in app.providers.items():
                try:
                    messages.append(await provider.health())
                except BotError as exc:
                    messages.append(f"{name}: {exc.user_message}")
            # A wrong key: the refusal must not quote either key.
            kelly_settings = app.providers["kelly"].settings
            assert isinstance(kelly_settings, HttpProviderSettings)
            kelly_settings.api_key = SecretStr("kelly-wrong-key")
            try:
                await app.providers["kelly"].health()
            except BotError as exc:
                messages.append(exc.user_message)

    assert len(messages) >= 14 and sum("refunded" in m for m in messages) >= 5, messages
    for message in messages:
        assert not leaked(message), message
        assert BASIC not in message
    log = debug_log.getvalue()
    assert "DEBUG" in log and "provider" in log
    assert not leaked(log), [line for line in log.splitlines() if leaked(line)][:3]
    assert BASIC not in log, [line for line in log.splitlines() if BASIC in line][:3]

    # What reached the backends: the bot token nowhere; each credential only in its header.
    wire = [*sent, *(repr(c) for c in stab.calls), *(repr(h) for h in kelly.edit_headers),
            *(repr(b) for b in kelly.edits), *(repr(b) for b in webui.img2img_bodies),
            *(repr(h) for h in webui.headers), *(f"{m} {p}" for m, p in
                                                 stab.requests + kelly.requests + webui.requests)]
    assert len(sent) >= 16
    for text in wire:
        for secret in leaked(text):
            own = OWN_HEADER.get(secret)
            assert own is not None, (secret, text[:300])
            assert text.count(secret) == text.count(own), (secret, text[:300])
    for call in stab.calls:
        assert call.headers["Authorization"] == f"Bearer {STAB_KEY}"
    db = sqlite3.connect(tmp_path / "bot.db")
    try:
        stored = repr(db.execute("SELECT * FROM jobs").fetchall())
    finally:
        db.close()
    assert not leaked(stored) and BASIC not in stored


async def _bot(config: Path, *args: str) -> str:
    env = {**os.environ, **ENVIRON}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "--config", str(config), *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    return out.decode()


def _toml(raw: dict[str, Any]) -> str:
    """Just enough TOML for the config above (tables of strings and numbers)."""
    lines: list[str] = []

    def table(prefix: str, values: dict[str, Any]) -> None:
        scalars = {k: v for k, v in values.items() if not isinstance(v, dict)}
        if prefix:
            lines.append(f"[{prefix}]")
        for key, value in scalars.items():
            lines.append(f"{key} = {value!r}".replace("'", '"'))
        for key, value in values.items():
            if isinstance(value, dict):
                table(f"{prefix}.{key}" if prefix else key, value)

    table("", raw)
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("log_format", ["text", "json"])
async def test_a_real_process_at_debug_prints_no_secret(tmp_path: Path, log_format: str) -> None:
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(jpeg_bytes((320, 240)))
    async with FakeStability(STAB_KEY) as stab, FakeKellyAPI(KELLY_KEY) as kelly, \
            LeakyA1111() as webui:
        config = tmp_path / "config.toml"
        config.write_text(_toml(_config(tmp_path, stab.base_url, kelly.base_url,
                                        webui.base_url, log_level="DEBUG",
                                        log_format=log_format)))
        outputs = [await _bot(config, "doctor")]
        stab.plan("echo_key")
        kelly.plan("echo_key")
        webui.leaks = 1
        for provider in ("stab", "kelly", "webui"):
            outputs.append(await _bot(config, "transform", str(photo), "a lighthouse",
                                      "--provider", provider, "-o", str(tmp_path / "o.png")))
        outputs.append(await _bot(config, "transform", str(photo), "again", "--provider",
                                  "kelly", "-o", str(tmp_path / "o.png")))
    text = "\n".join(outputs)
    assert "DEBUG" in text and "error:" in text and "seed" in text, text[-2000:]
    if log_format == "json":
        assert '"level": "DEBUG"' in text and '"job_id": ' in text, text[-2000:]
    assert not leaked(text), [line for line in text.splitlines() if leaked(line)][:3]
    assert BASIC not in text, [line for line in text.splitlines() if BASIC in line][:3]


async def test_an_echoed_basic_auth_header_is_masked_in_the_log(
        tmp_path: Path, debug_log: io.StringIO) -> None:
    async with FakeStability(STAB_KEY) as stab, FakeKellyAPI(KELLY_KEY) as kelly, \
            LeakyA1111() as webui:
        config = build_config(_config(tmp_path, stab.base_url, kelly.base_url, webui.base_url),
                              environ=ENVIRON)
        webui.leaks = 1
        async with running_app(config) as app:
            handle = await app.service.submit(GenerationRequest(
                user=UserRef("telegram", "5"), chat=ChatRef("telegram", "5", private=True),
                image=jpeg_bytes(), prompt="x", overrides=Overrides(provider="webui")))
            final = await handle.wait()
    assert isinstance(final, Failed) and BASIC not in final.message
    assert BASIC not in debug_log.getvalue()
