"""Queued uploads beyond the memory budget wait in files, and every path cleans them up."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

from bot.app import App, running_app
from bot.config import build_config
from bot.events import Done, Failed
from bot.jobs import GenerationRequest, JobHandle, UploadSpool
from bot.models import ChatRef, GenerationResult, ProviderJob, UserRef
from bot.providers import PROVIDERS
from bot.providers.base import Reporter
from bot.providers.echo import EchoProvider
from tests.fakes.server import jpeg_bytes


class GatedEcho(EchoProvider):
    """Echo that waits for the gate: jobs stay queued behind the first one."""

    type_name = "gated"
    gate: ClassVar[asyncio.Event]

    async def _generate(self, job: ProviderJob, reporter: Reporter) -> GenerationResult:
        await self.gate.wait()
        return await super()._generate(job, reporter)


@pytest.fixture
async def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[App]:
    monkeypatch.setitem(PROVIDERS, "gated", f"{__name__}:GatedEcho")
    GatedEcho.gate = asyncio.Event()
    config = build_config({
        "storage": {"url": f"sqlite:///{tmp_path / 'bot.db'}"},
        "credits": {"initial": 100, "daily_free": 0},
        "defaults": {"provider": "main"},
        "providers": {"main": {"type": "gated", "cost": 1, "max_concurrency": 1}},
    }, environ={})
    async with running_app(config) as built:
        yield built


def request(user: int, image: bytes) -> GenerationRequest:
    ref = UserRef("telegram", str(user))
    return GenerationRequest(user=ref, chat=ChatRef("telegram", ref.id, private=True),
                             image=image, prompt="a fox")


async def test_queued_uploads_beyond_the_budget_wait_on_disk(app: App) -> None:
    photos = [jpeg_bytes((320 + 8 * i, 240), (i * 40, 90, 160)) for i in range(5)]
    spool = app.service.spool
    spool.budget = len(photos[0]) + 1  # room for about one upload in memory
    handles = [await app.service.submit(request(i, photo)) for i, photo in enumerate(photos)]
    await asyncio.sleep(0.05)
    files = [h.spooled for h in handles if h.spooled is not None]
    assert len(files) >= 3 and all(path.exists() for path in files)
    assert spool.in_memory <= spool.budget
    assert all(h.image == b"" for h in handles if h.spooled is not None)

    cancelled = handles[-1]
    assert cancelled.spooled is not None
    cancelled_file = cancelled.spooled
    assert await app.service.cancel(cancelled.id)
    assert not cancelled_file.exists()

    GatedEcho.gate.set()
    finals = [await h.wait() for h in handles]
    assert isinstance(finals[-1], Failed)
    for final in finals[:-1]:
        assert isinstance(final, Done)
    assert [f.images[0].data[:8] for f in finals[:-1] if isinstance(f, Done)] == \
        [b"\x89PNG\r\n\x1a\n"] * 4
    assert not any(path.exists() for path in files)
    assert spool.in_memory == 0
    assert await app.storage.drift() == []


async def test_stop_removes_the_spool_of_jobs_still_queued(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(PROVIDERS, "gated", f"{__name__}:GatedEcho")
    GatedEcho.gate = asyncio.Event()
    config = build_config({
        "storage": {"url": f"sqlite:///{tmp_path / 'bot.db'}"},
        "defaults": {"provider": "main"},
        "providers": {"main": {"type": "gated", "cost": 1}},
    }, environ={})
    async with running_app(config) as app:
        app.service.spool.budget = 0
        handles = [await app.service.submit(request(i, jpeg_bytes())) for i in range(3)]
        folder = next(h.spooled for h in handles if h.spooled is not None).parent
        assert folder.exists()
    assert not folder.exists()
    finals = [h.final for h in handles]
    assert all(isinstance(f, Failed) and f.refunded for f in finals)


class _Handle:
    def __init__(self, job_id: str, image: bytes) -> None:
        self.id = job_id
        self.image = image
        self.spooled: Path | None = None


async def test_a_job_taken_while_its_file_is_written_keeps_its_bytes() -> None:
    spool = UploadSpool(budget=0)
    handle: Any = _Handle("j1", b"x" * 1000)
    writing = asyncio.create_task(spool.hold(handle))
    await asyncio.sleep(0)  # the write has started on a thread
    assert await spool.take(handle) == b"x" * 1000
    await writing
    assert handle.spooled is None and spool.in_memory == 0
    assert spool._folder is not None and list(spool._folder.iterdir()) == []
    spool.close()


async def test_a_failed_write_keeps_the_upload_in_memory(tmp_path: Path) -> None:
    spool = UploadSpool(budget=0)
    spool._folder = tmp_path / "missing" / "folder"
    handle: JobHandle = _Handle("j2", b"y" * 10)  # type: ignore[assignment]
    await spool.hold(handle)
    assert handle.spooled is None and spool.in_memory == 10
    assert await spool.take(handle) == b"y" * 10
    assert spool.in_memory == 0
