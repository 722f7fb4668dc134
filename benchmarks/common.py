"""What the benchmark scripts share: the machine line, percentiles, test photos, a loop monitor.

Each script puts the repository root on ``sys.path`` before importing this module, so the
scripts run as ``python benchmarks/bench_x.py`` from a checkout without installing anything.
"""

from __future__ import annotations

import asyncio
import gc
import io
import os
import platform
import resource
import statistics
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

from PIL import Image

from bot.config import Config, build_config
from bot.models import GenerationResult, ProviderJob, SizeRules
from bot.providers import PROVIDERS
from bot.providers.base import Reporter
from bot.providers.echo import EchoProvider

ROOT = Path(__file__).resolve().parents[1]


def machine() -> str:
    """One line naming the machine: cores, RAM, Python, Pillow, OS."""
    import PIL

    pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    cpu = platform.processor() or platform.machine()
    return (f"{cores} cores, {pages / 2**30:.0f} GiB RAM, {cpu}, "
            f"Python {platform.python_version()}, Pillow {PIL.__version__}, "
            f"{platform.system()} {platform.release()}")


def header(title: str) -> None:
    print(f"== {title}")
    print(f"   {time.strftime('%Y-%m-%d %H:%M')} on {machine()}")


def percentile(values: Sequence[float], fraction: float) -> float:
    """The ``fraction`` quantile (nearest rank); 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * len(ordered) + 0.5) - 1))
    return ordered[index]


def describe_ms(values: Sequence[float]) -> str:
    """p50/p99/max of durations given in seconds, in milliseconds."""
    return (f"p50 {percentile(values, 0.50) * 1000:7.2f} ms  "
            f"p99 {percentile(values, 0.99) * 1000:7.2f} ms  "
            f"max {max(values, default=0) * 1000:7.2f} ms  (n={len(values)})")


def mean(values: Sequence[float]) -> float:
    return statistics.fmean(values) if values else 0.0


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else 0.0


def photo_jpeg(size: tuple[int, int] = (4000, 3000), *, grain: float = 20.0,
               quality: int = 90) -> bytes:
    """A photo-like JPEG: soft colour fields plus sensor-like grain, so it compresses like one.

    At 4000x3000 the default is about 3.7 MB (a phone camera's 12 MP JPEG); ``grain=40``
    gives about 5 MB.
    """
    width, height = size
    small = (max(1, width // 16), max(1, height // 16))
    fields = Image.merge("RGB", (Image.effect_noise(small, 80),
                                 Image.linear_gradient("L").resize(small),
                                 Image.effect_noise(small, 60)))
    base = fields.resize(size, Image.Resampling.BICUBIC)
    grainy = Image.effect_noise(size, grain).convert("RGB")
    buf = io.BytesIO()
    Image.blend(base, grainy, 0.25).save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def distinct_copy(data: bytes, index: int) -> bytes:
    """A separate bytes object of the same JPEG with a unique comment (one upload per user)."""
    comment = f"upload {index}".encode()
    segment = b"\xff\xfe" + (len(comment) + 2).to_bytes(2, "big") + comment
    return data[:2] + segment + data[2:]


class ThumbEcho(EchoProvider):
    """The echo backend at thumbnail size, so image work does not hide the core's own cost."""

    type_name = "thumb-echo"
    size_rules = SizeRules(multiple=8, min_side=64, max_side=2048, preferred_area=64 * 64)


def register_thumb_echo() -> None:
    PROVIDERS.setdefault("thumb-echo", f"{__name__}:ThumbEcho")


class GatedEcho(EchoProvider):
    """The echo backend that waits for ``gate`` first: jobs stay queued until it opens."""

    type_name = "gated-echo"
    gate: ClassVar[asyncio.Event]

    async def _generate(self, job: ProviderJob, reporter: Reporter) -> GenerationResult:
        await self.gate.wait()
        return await super()._generate(job, reporter)


def register_gated_echo() -> None:
    """Register ``type = "gated-echo"`` with a fresh (closed) gate; call inside the loop."""
    GatedEcho.gate = asyncio.Event()
    PROVIDERS.setdefault("gated-echo", f"{__name__}:GatedEcho")


class SlowEcho(EchoProvider):
    """The echo backend taking ``seconds`` per job, reporting progress every half second."""

    type_name = "slow-echo"
    seconds: ClassVar[float] = 2.0

    async def _generate(self, job: ProviderJob, reporter: Reporter) -> GenerationResult:
        steps = max(1, round(self.seconds / 0.5))
        for step in range(steps):
            reporter.progress(step / steps, eta=(steps - step) * self.seconds / steps)
            await asyncio.sleep(self.seconds / steps)
        return await super()._generate(job, reporter)


def register_slow_echo() -> None:
    PROVIDERS.setdefault("slow-echo", f"{__name__}:SlowEcho")


def service_config(db: Path, *, backend: str = "echo", concurrency: int = 4, price: int = 1,
                   initial: int = 1_000_000, max_queue: int = 10_000, per_user: int = 1_000,
                   extra: dict[str, Any] | None = None) -> Config:
    """A config whose default provider ``echo`` is the instant backend (``echo`` or thumb-echo)."""
    if backend == "thumb-echo":
        register_thumb_echo()
    elif backend == "slow-echo":
        register_slow_echo()
    elif backend == "gated-echo" and not hasattr(GatedEcho, "gate"):
        register_gated_echo()
    providers: dict[str, Any] = {"echo": {"type": backend, "cost": price,
                                          "max_concurrency": concurrency, "timeout": 600}}
    providers.update(extra or {})
    return build_config({
        "storage": {"url": f"sqlite:///{db}"},
        "credits": {"initial": initial, "daily_free": 0},
        "defaults": {"provider": "echo"},
        "limits": {"max_queue": max_queue, "max_queued_per_user": per_user,
                   "max_input_bytes": 40 * 1024 * 1024},
        "providers": providers,
    }, environ={})


class LoopLag:
    """Samples how late the event loop wakes a sleeper: the delay every other task sees."""

    def __init__(self, interval: float = 0.005) -> None:
        self.interval = interval
        self.samples: list[float] = []
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            before = time.perf_counter()
            await asyncio.sleep(self.interval)
            self.samples.append(max(0.0, time.perf_counter() - before - self.interval))

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> list[float]:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        return self.samples


def peak_rss_mb() -> float:
    """The peak resident set size since start or ``reset_peak_rss`` (Linux: VmHWM)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


def reset_peak_rss() -> bool:
    """Start the peak over from the current RSS (Linux 4.0+); False where it cannot."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as clear:
            clear.write("5")
    except OSError:
        return False
    return True


def current_rss_mb() -> float:
    """Resident set size now (Linux /proc; falls back to the peak elsewhere)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            pages = int(statm.read().split()[1])
    except OSError:
        return peak_rss_mb()
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


@contextmanager
def timer() -> Iterator[list[float]]:
    """``with timer() as t: ...`` then ``t[0]`` is the elapsed seconds."""
    out: list[float] = []
    started = time.perf_counter()
    try:
        yield out
    finally:
        out.append(time.perf_counter() - started)


class CollectorPauses:
    """Counts the cycle collector's passes in this process and the time they stop it for, by
    generation (``gc.callbacks``); ``since(mark)`` gives what happened after ``mark()``."""

    def __init__(self) -> None:
        self.counts = [0, 0, 0]
        self.seconds = [0.0, 0.0, 0.0]
        self._began = 0.0
        gc.callbacks.append(self._note)

    def _note(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._began = time.perf_counter()
        else:
            self.counts[info["generation"]] += 1
            self.seconds[info["generation"]] += time.perf_counter() - self._began

    def mark(self) -> tuple[list[int], list[float]]:
        return list(self.counts), list(self.seconds)

    def since(self, mark: tuple[list[int], list[float]]) -> str:
        """``full 1 (212 ms), young 121 (45 ms)``: full passes and the younger ones."""
        counts = [now - before for now, before in zip(self.counts, mark[0], strict=True)]
        ms = [(now - before) * 1000 for now, before in zip(self.seconds, mark[1], strict=True)]
        return (f"full {counts[2]} ({ms[2]:.0f} ms), young {counts[0] + counts[1]} "
                f"({ms[0] + ms[1]:.0f} ms)")
