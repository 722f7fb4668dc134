"""Event-loop lag while 100 jobs with 12-megapixel JPEG inputs go through the service.

A sampler task sleeps 5 ms again and again and records how late it wakes: that delay is what
every other task on the loop (a Telegram update, a progress edit) waits. Three runs in one
process: the loop idle (the machine's own noise), the 100 jobs through ``GenerationService``
with the echo backend (probe at submit, prepare when each job starts, both on the imaging
thread pool), and the same preparation done naively on the loop, for contrast.

    python benchmarks/bench_loop_lag.py [--jobs 100] [--concurrency 4]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import LoopLag, distinct_copy, header, percentile, photo_jpeg, service_config
from bot import imaging
from bot.app import running_app
from bot.events import Done
from bot.jobs import GenerationRequest
from bot.models import ChatRef, UserRef


def _line(label: str, samples: list[float], elapsed: float | None = None) -> None:
    took = f"  ({elapsed:.1f} s)" if elapsed is not None else ""
    worst = max(samples, default=0)
    print(f"   {label:<28} lag p50 {percentile(samples, 0.5) * 1000:6.1f} ms  p99 "
          f"{percentile(samples, 0.99) * 1000:6.1f} ms  max {worst * 1000:6.1f} ms"
          f"  ({len(samples)} samples){took}")


async def _idle(seconds: float) -> list[float]:
    lag = LoopLag()
    lag.start()
    await asyncio.sleep(seconds)
    return await lag.stop()


async def main_async(args: argparse.Namespace) -> None:
    header(f"event-loop lag: {args.jobs} jobs with 12 MP JPEG inputs, echo backend "
           f"(max_concurrency {args.concurrency}, imaging pool {imaging._pool._max_workers})")
    photo = photo_jpeg((4000, 3000))
    uploads = [distinct_copy(photo, i) for i in range(args.jobs)]
    print(f"   input: 4000x3000 JPEG, {len(photo) / 1e6:.1f} MB each")
    _line("idle loop (noise floor)", await _idle(2.0))
    with tempfile.TemporaryDirectory() as folder:
        config = service_config(Path(folder) / "lag.db", concurrency=args.concurrency)
        async with running_app(config) as app:
            lag = LoopLag()
            lag.start()
            started = time.perf_counter()
            handles = []
            for index, upload in enumerate(uploads):
                user = UserRef("telegram", str(index))
                handles.append(await app.service.submit(GenerationRequest(
                    user=user, chat=ChatRef("telegram", user.id, private=True), image=upload,
                    prompt="a watercolor painting")))
            submitted = time.perf_counter() - started
            finals = [await handle.wait() for handle in handles]
            elapsed = time.perf_counter() - started
            samples = await lag.stop()
            assert all(isinstance(final, Done) for final in finals)
            size = (handles[0].params.width, handles[0].params.height)
    _line("through the service", samples, elapsed)
    print(f"   (all {args.jobs} submitted in {submitted:.1f} s; prepared to {size[0]}x{size[1]} "
          f"PNG; {args.jobs / elapsed:.1f} jobs/s)")
    lag = LoopLag()
    lag.start()
    started = time.perf_counter()
    for upload in uploads[: args.naive]:
        imaging.probe(upload, max_bytes=40 * 2**20, max_pixels=40_000_000)
        imaging.prepare(upload, size)
        await asyncio.sleep(0)
    naive = await lag.stop()
    _line(f"naive, on the loop ({args.naive} jobs)", naive, time.perf_counter() - started)
    print(f"   ratio naive/service at p99: "
          f"{percentile(naive, 0.99) / max(percentile(samples, 0.99), 1e-6):.0f}x; "
          "target: p99 <= 20 ms through the service")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=4, help="echo max_concurrency")
    parser.add_argument("--naive", type=int, default=10, help="jobs in the naive run")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
