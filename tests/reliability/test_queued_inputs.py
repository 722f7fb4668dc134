"""Queued uploads live in storage, not in memory: they survive a stop and go with their job."""

from __future__ import annotations

import asyncio
import io
import sqlite3
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, ClassVar

import pytest
from PIL import Image

from bot.app import App, running_app
from bot.config import Config, build_config
from bot.events import Done, Failed
from bot.jobs import GenerationRequest
from bot.models import ChatRef, GenerationResult, ProviderJob, UserRef
from bot.providers import PROVIDERS
from bot.providers.base import Reporter
from bot.providers.echo import EchoProvider
from storage.base import JobRecord
from tests.core.test_imaging import photo
from tests.fakes.server import jpeg_bytes


class GatedEcho(EchoProvider):
    """Echo that waits for the gate: jobs stay queued behind the first one."""

    type_name = "gated"
    gate: ClassVar[asyncio.Event]

    async def _generate(self, job: ProviderJob, reporter: Reporter) -> GenerationResult:
        await self.gate.wait()
        return await super()._generate(job, reporter)


class Recorder:
    """A courier that shares its platform with every process: what a chat would receive."""

    def __init__(self, expect: int = 0) -> None:
        self.delivered: list[str] = []
        self.all_there = asyncio.Event()
        self.expect = expect

    async def deliver(self, job: JobRecord, done: Done) -> str:
        self.delivered.append(job.id)
        if len(self.delivered) >= self.expect:
            self.all_there.set()
        return f"message-{len(self.delivered)}"

    async def notify(self, job: JobRecord, text: str) -> None:
        return None

    def resume(self, handle: Any, job: JobRecord) -> None:
        return None


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Config:
    monkeypatch.setitem(PROVIDERS, "gated", f"{__name__}:GatedEcho")
    GatedEcho.gate = asyncio.Event()
    return build_config({
        "storage": {"url": f"sqlite:///{tmp_path / 'bot.db'}"},
        "credits": {"initial": 100, "daily_free": 0},
        "defaults": {"provider": "main"},
        "limits": {"max_queued_per_user": 20},
        "providers": {"main": {"type": "gated", "cost": 1, "max_concurrency": 1}},
    }, environ={})


@pytest.fixture
async def app(config: Config) -> AsyncIterator[App]:
    async with running_app(config) as built:
        built.service.register_courier("telegram", Recorder())
        yield built


def request(user: int, image: bytes) -> GenerationRequest:
    ref = UserRef("telegram", str(user))
    return GenerationRequest(user=ref, chat=ChatRef("telegram", ref.id, private=True),
                             image=image, prompt="a fox")


def inputs(config: Config) -> Callable[[], list[tuple[str, int]]]:
    """(job id, bytes) of the uploads stored now, read from the database file."""
    path = config.storage.url.removeprefix("sqlite:///")

    def read() -> list[tuple[str, int]]:
        with sqlite3.connect(path) as conn:
            return list(conn.execute("SELECT job_id, length(data) FROM job_blobs WHERE "
                                     "kind = 'input' ORDER BY job_id"))
    return read


async def test_queued_uploads_are_stored_and_removed_with_their_job(app: App) -> None:
    photos = [jpeg_bytes((320 + 8 * i, 240), (i * 40, 90, 160)) for i in range(5)]
    handles = [await app.service.submit(request(i, photo)) for i, photo in enumerate(photos)]
    stored = inputs(app.config)
    expected = {h.id: len(p) for h, p in zip(handles, photos, strict=True)}
    await asyncio.sleep(0.1)  # the first one is claimed: its upload stays until it ends
    assert dict(stored()) == expected
    assert not any(hasattr(h, "image") for h in handles)  # nothing kept in memory
    assert await app.service.cancel(handles[-1].id)
    assert handles[-1].id not in dict(stored())
    GatedEcho.gate.set()
    finals = [await h.wait() for h in handles]
    assert [type(f) for f in finals] == [Done] * 4 + [Failed]
    assert stored() == []


async def test_a_stop_keeps_queued_jobs_and_the_next_start_runs_them(config: Config) -> None:
    async with running_app(config) as first:
        first.service.register_courier("telegram", Recorder())
        handles = [await first.service.submit(request(i, jpeg_bytes())) for i in range(10)]
        await asyncio.sleep(0.2)
    assert len(inputs(config)()) == 10  # the running one went back to the queue too
    GatedEcho.gate.set()
    async with running_app(config) as second:
        recorder = Recorder(expect=10)
        second.service.register_courier("telegram", recorder)
        async with asyncio.timeout(10):
            await recorder.all_there.wait()
        assert sorted(recorder.delivered) == sorted(h.id for h in handles)
        for index in range(10):
            kinds = [e.kind for e in await second.storage.ledger(f"telegram:{index}")]
            assert kinds == ["reserve", "initial"]  # charged once, never refunded
        assert await second.storage.drift() == []
    assert inputs(config)() == []


async def test_a_job_started_at_once_keeps_its_smaller_provider_input_through_a_stop(
        config: Config) -> None:
    upload = photo((1280, 960))
    path = config.storage.url.removeprefix("sqlite:///")
    async with running_app(config) as first:
        first.service.register_courier("telegram", Recorder())
        handle = await first.service.submit(request(1, upload))
        await asyncio.sleep(0.2)  # running, held at the gate
        with sqlite3.connect(path) as conn:
            [(job_id, mime, data)] = conn.execute(
                "SELECT job_id, mime, data FROM job_blobs WHERE kind = 'input'").fetchall()
    # What it runs on, at the job's size, rather than the 1280x960 upload (over twice as big).
    assert job_id == handle.id and mime == "image/jpeg" and len(data) * 2 < len(upload)
    assert Image.open(io.BytesIO(data)).size == (handle.params.width, handle.params.height)
    GatedEcho.gate.set()
    async with running_app(config) as second:  # runs it again from the stored input
        recorder = Recorder(expect=1)
        second.service.register_courier("telegram", recorder)
        async with asyncio.timeout(10):
            await recorder.all_there.wait()
        assert recorder.delivered == [handle.id]
        assert [e.kind for e in await second.storage.ledger("telegram:1")] == [
            "reserve", "initial"]
    assert inputs(config)() == []
