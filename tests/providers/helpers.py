"""Helpers for backend tests: jobs, recording reporters, building backends, shared checks."""

from __future__ import annotations

import asyncio
import io
import json
import socket
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

import httpx
import pytest
from PIL import Image

from bot.errors import ProviderError
from bot.models import ImageData, Params, ProviderJob
from bot.providers.base import HttpProviderSettings, Provider, Reporter
from tests.fakes.server import Seen, png_bytes

P = TypeVar("P", bound=Provider)
# Shaped like a Telegram bot token; handed to nothing, so it must reach no request.
BOT_TOKEN = "7234567890:AAHfiqksKZ8WmR2zSjiQ7_v4TMAKdiHm9T0"


def make_job(*, timeout: float = 5.0, image: bytes | None = None, mime: str = "image/png",
             job_id: str = "job-1", **params: Any) -> ProviderJob:
    """A ``ProviderJob`` for tests; ``params`` override the defaults of ``Params``."""
    defaults: dict[str, Any] = {
        "prompt": "an oil painting", "provider": "test", "strength": 0.6, "steps": 20,
        "cfg": 7.0, "width": 512, "height": 512, "seed": 42,
    }
    defaults.update(params)
    return ProviderJob(job_id=job_id, params=Params(**defaults),
                       image=ImageData(image or png_bytes((512, 512)), mime), timeout=timeout)


class RecordingReporter(Reporter):
    """A reporter that keeps every progress call for assertions."""

    def __init__(self) -> None:
        self.events: list[tuple[float | None, float | None, str | None]] = []
        self._news = asyncio.Event()
        super().__init__(self._keep)

    def _keep(self, fraction: float | None, eta: float | None, text: str | None) -> None:
        self.events.append((fraction, eta, text))
        self._news.set()

    async def text_starting(self, prefix: str) -> None:
        """Return once a progress text starting with ``prefix`` has been reported."""
        while not any((text or "").startswith(prefix) for _, _, text in self.events):
            self._news.clear()
            await self._news.wait()


def build_provider(cls: type[P], http: httpx.AsyncClient, name: str,
                   settings: Mapping[str, Any]) -> P:
    """A backend built as the bot builds one: its table validated, its secrets registered."""
    config = cls.Settings.model_validate({"type": cls.type_name, **settings})
    config.resolve_secrets(name, {})
    return cls(name, config, http)


def one_sentence(message: str) -> bool:
    """What a user message should be: one sentence, ending with a full stop."""
    return message.endswith(".") and ". " not in message


async def job_error(provider: Provider, **params: Any) -> ProviderError:
    """The error a job on ``provider`` raises; the test fails if it raises none."""
    with pytest.raises(ProviderError) as info:
        await provider.generate(make_job(**params), RecordingReporter())
    return info.value


async def run_error(provider: Provider, **params: Any) -> ProviderError:
    """``job_error``, whose user message must also be one sentence without the key."""
    error = await job_error(provider, **params)
    assert one_sentence(error.user_message), error.user_message
    settings = provider.settings
    if isinstance(settings, HttpProviderSettings) and settings.key():
        assert settings.key() not in error.user_message
    return error


def assert_hidden(secrets: Iterable[str], caplog: pytest.LogCaptureFixture,
                  *errors: ProviderError) -> None:
    """No secret in anything logged, nor in the errors or their user messages."""
    assert caplog.records
    texts = [caplog.text, *(record.getMessage() for record in caplog.records)]
    texts += [text for error in errors for text in (str(error), error.user_message)]
    for secret in secrets:
        assert not any(secret in text for text in texts), secret


def assert_no_chat_data(seen: Iterable[Seen]) -> None:
    """Requests were made, and none carried a Telegram file URL or the bot token."""
    requests = list(seen)
    assert requests
    for request in requests:
        text = request.url + json.dumps(request.headers) + request.body.decode("latin-1")
        assert "api.telegram.org" not in text and "/file/bot" not in text
        assert BOT_TOKEN not in text


def image_size(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as image:
        return image.size


def dead_url() -> str:
    """A loopback port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"
