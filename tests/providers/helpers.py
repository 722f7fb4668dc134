"""Helpers for backend tests: a job with sensible defaults and a reporter that records."""

from __future__ import annotations

from typing import Any

from bot.models import ImageData, Params, ProviderJob
from bot.providers.base import Reporter
from tests.fakes.server import png_bytes


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
        super().__init__(lambda f, e, t: self.events.append((f, e, t)))
