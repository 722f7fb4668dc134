"""Micro-batching for the in-process pipeline: jobs with equal settings share one call.

``BatchQueue`` groups jobs on the event loop; ``decode_input``, ``pipeline_kwargs``,
``step_callback`` and ``split_output`` run on the worker thread and turn a group into one call
and its output back into one result per job.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

from PIL import Image as PILImage
from PIL.Image import Image

from bot.errors import ContentFiltered
from bot.models import GenerationResult, ImageData, ProviderJob
from bot.providers.base import Reporter

log = logging.getLogger(__name__)

# What one pipeline call returns for each entry: its result or the error it failed with.
Outcome = GenerationResult | BaseException


@dataclass(frozen=True, slots=True)
class BatchKey:
    """The settings that must be equal for jobs to run in one pipeline call."""

    width: int
    height: int
    steps: int
    strength: float
    cfg: float
    model: str

    @classmethod
    def of(cls, job: ProviderJob, model: str) -> BatchKey:
        p = job.params
        return cls(p.width, p.height, p.steps, p.strength, p.cfg, p.model or model)


@dataclass(eq=False, slots=True)
class Entry:
    """One job waiting for, or inside, a pipeline call."""

    job: ProviderJob
    reporter: Reporter
    seed: int
    key: BatchKey
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[GenerationResult]
    arrived: float
    # Set from the event loop, read by the worker thread's step callback.
    cancelled: threading.Event = field(default_factory=threading.Event)

    @property
    def images(self) -> int:
        return self.job.params.samples

    def post(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` on the job's event loop; safe from any thread."""
        with contextlib.suppress(RuntimeError):  # the loop has closed: nobody is listening
            self.loop.call_soon_threadsafe(fn, *args)

    def cancel(self) -> None:
        self.cancelled.set()


class BatchQueue:
    """Runs entries one pipeline call at a time on ``executor``, grouping equal keys.

    The oldest waiting entry opens a batch; the batch closes when ``window`` seconds have passed
    since that entry arrived or when it holds ``max_batch`` images, and then takes every waiting
    entry with the same key (oldest first) that still fits. Entries that arrive while a call runs
    wait and are grouped for the next call, so a busy device naturally batches more.
    """

    def __init__(
        self,
        run: Callable[[Sequence[Entry]], list[Outcome]],
        executor: Executor,
        *,
        window: float,
        max_batch: int,
    ) -> None:
        self._run = run
        self._executor = executor
        self._window = window
        self._max_batch = max_batch
        self._waiting: list[Entry] = []
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.running: tuple[Entry, ...] = ()

    async def submit(self, entry: Entry) -> GenerationResult:
        """Queue ``entry`` and wait for its result; cancelling the caller cancels the entry."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # a new event loop (tests, restarts): start afresh
            self._loop, self._waiting, self._wake, self._task = loop, [], asyncio.Event(), None
        assert self._wake is not None
        self._waiting.append(entry)
        self._wake.set()
        if self._task is None or self._task.done():
            self._task = loop.create_task(self._dispatch(), name="diffusers-batcher")
        try:
            return await entry.future
        except asyncio.CancelledError:
            entry.cancel()
            raise

    def cancel_all(self) -> None:
        """Interrupt the running call and drop every waiting entry."""
        for entry in (*self.running, *self._waiting):
            entry.cancel()
            if not entry.future.done():
                entry.future.cancel()
        if self._task is not None:
            self._task.cancel()

    def _same_key(self, key: BatchKey) -> list[Entry]:
        return [e for e in self._waiting if e.key == key]

    def _take(self, key: BatchKey) -> list[Entry]:
        batch: list[Entry] = []
        images = 0
        for entry in self._same_key(key):
            if batch and images + entry.images > self._max_batch:
                break
            batch.append(entry)
            images += entry.images
        self._waiting = [e for e in self._waiting if e not in batch]
        return batch

    async def _dispatch(self) -> None:
        loop = asyncio.get_running_loop()
        assert self._wake is not None
        while True:
            self._waiting = [e for e in self._waiting if not e.future.done()]
            if not self._waiting:
                return
            first = self._waiting[0]
            delay = first.arrived + self._window - loop.time()
            images = sum(e.images for e in self._same_key(first.key))
            if delay > 0 and images < self._max_batch:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await self._wake.wait()
                continue
            await self._call(self._take(first.key))

    async def _call(self, batch: list[Entry]) -> None:
        loop = asyncio.get_running_loop()
        self.running = tuple(batch)
        try:
            outcomes = await loop.run_in_executor(self._executor, self._run, batch)
        except asyncio.CancelledError:
            for entry in batch:
                entry.cancel()
            raise
        except Exception as exc:  # ``run`` maps its own errors; this keeps callers from hanging
            log.exception("diffusers batch failed outside the pipeline")
            outcomes = [exc] * len(batch)
        finally:
            self.running = ()
        for entry, outcome in zip(batch, outcomes, strict=True):
            if entry.future.done():
                continue
            if isinstance(outcome, BaseException):
                entry.future.set_exception(outcome)
            else:
                entry.future.set_result(outcome)


class Interrupted(Exception):
    """Raised from the step callback to stop a call whose jobs were all cancelled."""


def seeds_of(entry: Entry) -> list[int]:
    """One seed per sample: the job's seed, then the following numbers."""
    return [(entry.seed + i) % 2**32 for i in range(entry.images)]


def pipeline_kwargs(entries: Sequence[Entry], images: Sequence[Image]) -> dict[str, Any]:
    """The call's arguments: one row per output image, each with its own generator.

    Samples are flattened into rows rather than passed as ``num_images_per_prompt`` (which would
    pair the wrong input images with prompts in a batch), and each row's CPU generator makes a
    job's images depend only on its seed, alone or batched, on any device.
    """
    import torch

    key = entries[0].key
    rows: dict[str, list[Any]] = {"prompt": [], "negative_prompt": [], "image": [],
                                  "generator": []}
    for entry, image in zip(entries, images, strict=True):
        for seed in seeds_of(entry):
            rows["prompt"].append(entry.job.params.prompt)
            rows["negative_prompt"].append(entry.job.params.negative_prompt)
            rows["image"].append(image)
            rows["generator"].append(torch.Generator("cpu").manual_seed(seed))
    if not any(rows["negative_prompt"]):
        del rows["negative_prompt"]
    return {**rows, "num_inference_steps": key.steps, "strength": key.strength,
            "guidance_scale": key.cfg, "num_images_per_prompt": 1,
            "callback_on_step_end": step_callback(entries)}


def step_callback(entries: Sequence[Entry]) -> Callable[..., dict[str, Any]]:
    """A ``callback_on_step_end`` that reports progress and stops when every job is cancelled."""
    started = time.monotonic()

    def on_step_end(pipe: Any, step: int, timestep: Any,
                    tensors: dict[str, Any]) -> dict[str, Any]:
        live = [entry for entry in entries if not entry.cancelled.is_set()]
        if not live:
            raise Interrupted
        done = step + 1
        total = max(int(getattr(pipe, "num_timesteps", 0) or 0), done)
        eta = (time.monotonic() - started) / done * (total - done)
        for entry in live:
            entry.post(entry.reporter.progress, done / total, eta, f"step {done}/{total}")
        return tensors

    return on_step_end


def decode_input(data: bytes, width: int, height: int) -> Image:
    """The job's input as RGB at exactly the requested size (the output takes its size)."""
    with PILImage.open(io.BytesIO(data)) as opened:
        image = opened.convert("RGB")
    if image.size != (width, height):
        image = image.resize((width, height), PILImage.Resampling.LANCZOS)
    return image


def encode_png(image: Image) -> ImageData:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return ImageData(buffer.getvalue(), "image/png")


def split_output(entries: Sequence[Entry], images: Sequence[Image], flags: Sequence[bool],
                 metadata: dict[str, Any]) -> list[Outcome]:
    """Give each entry its rows back as PNGs; images the safety checker flagged are dropped."""
    outcomes: list[Outcome] = []
    start = 0
    for entry in entries:
        count = entry.images
        mine = [image for image, flagged in zip(images[start:start + count],
                                                flags[start:start + count], strict=True)
                if not flagged]
        start += count
        if not mine:
            outcomes.append(ContentFiltered(accepted=True))
            continue
        outcomes.append(GenerationResult(
            images=tuple(encode_png(image) for image in mine), seed=entry.seed,
            nsfw_filtered=len(mine) < count,
            metadata={**metadata, "seeds": seeds_of(entry), "batch_images": len(images)},
        ))
    return outcomes
