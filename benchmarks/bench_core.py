"""Core overhead: jobs through the generation service with an instant in-process backend.

50 simulated users each send a photo, wait for the result, pause a random moment and send the
next. A job's latency runs from parsing the caption to its ``Done`` event: the settings
layers, the credit reservation and commit (SQLite WAL), the fair queue and the events, plus
the image checks and preparation every job needs. By default the backend is the echo backend
at thumbnail size (64x64 output), so that image work, measured on its own by
``bench_prepare.py`` and ``bench_loop_lag.py``, does not hide the bookkeeping;
``--backend echo`` uses the real echo backend at 512x512-class sizes instead.

The same jobs run a second time without the service (parse, probe, prepare and the backend
called directly, with the same concurrency), so the difference is what the core's bookkeeping
costs per job. A last pass with no pause (every user always has a job in flight) shows the
throughput limit.

    python benchmarks/bench_core.py [--users 50] [--jobs 20] [--think-ms 500] [--backend echo]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import LoopLag, describe_ms, header, percentile, photo_jpeg, service_config
from bot import imaging
from bot.app import App, running_app
from bot.events import Done
from bot.jobs import GenerationRequest
from bot.models import ChatRef, ProviderJob, UserRef
from bot.parser import parse_caption
from bot.providers.base import Provider, Reporter

CAPTION = "/img2img a watercolor painting of a harbour --strength 0.55 --steps 20 --seed 7"
_cpu_per_job: list[float] = []  # process CPU seconds per job of the last pass (all threads)


async def _users(count: int, jobs: int, think: float,
                 one_job: Callable[[int], Awaitable[None]]) -> tuple[list[float], float]:
    latencies: list[float] = []

    async def user(index: int) -> None:
        rng = random.Random(index)
        for _ in range(jobs):
            if think:
                await asyncio.sleep(rng.expovariate(1 / think))
            started = time.perf_counter()
            await one_job(index)
            latencies.append(time.perf_counter() - started)

    started, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(user(i) for i in range(count)))
    _cpu_per_job.append((time.process_time() - cpu) / (count * jobs))
    return latencies, time.perf_counter() - started


def through_service(app: App, photo: bytes) -> Callable[[int], Awaitable[None]]:
    async def one_job(index: int) -> None:
        parsed = parse_caption(CAPTION)
        user = UserRef("telegram", str(1000 + index))
        request = GenerationRequest(user=user, chat=ChatRef("telegram", user.id, private=True),
                                    image=photo, prompt=parsed.prompt,
                                    overrides=parsed.overrides)
        handle = await app.service.submit(request)
        final = await handle.wait()
        assert isinstance(final, Done), final
    return one_job


def bare(provider: Provider, photo: bytes, concurrency: int,
         template: ProviderJob) -> Callable[[int], Awaitable[None]]:
    """Probe, prepare and generate with the same limits, without the service around them."""
    slots = asyncio.Semaphore(concurrency)

    async def one_job(index: int) -> None:
        parse_caption(CAPTION)
        await imaging.off_loop(imaging.probe, photo, max_bytes=40 * 2**20, max_pixels=40_000_000)
        async with slots:
            params = template.params
            image = await imaging.off_loop(imaging.prepare, photo, (params.width, params.height))
            job = ProviderJob(job_id=str(index), params=params, image=image, timeout=60)
            result = await provider.generate(job, Reporter())
            assert result.images
    return one_job


async def _pass(app: App, photo: bytes, args: argparse.Namespace, think: float,
                template: ProviderJob) -> None:
    lag = LoopLag()
    lag.start()
    service, service_elapsed = await _users(args.users, args.jobs, think,
                                            through_service(app, photo))
    service_cpu = _cpu_per_job[-1]
    service_lag = await lag.stop()
    provider = app.providers["echo"]
    direct, direct_elapsed = await _users(args.users, args.jobs, think,
                                          bare(provider, photo, args.concurrency, template))
    direct_cpu = _cpu_per_job[-1]
    total = args.users * args.jobs
    print(f"   service : {describe_ms(service)}  {total / service_elapsed:6.1f} jobs/s  "
          f"CPU {service_cpu * 1000:.2f} ms/job")
    print(f"   bare    : {describe_ms(direct)}  {total / direct_elapsed:6.1f} jobs/s  "
          f"CPU {direct_cpu * 1000:.2f} ms/job")
    print(f"   core CPU per job: {(service_cpu - direct_cpu) * 1000:+.2f} ms "
          "(process CPU time, all threads)")
    for label, q in (("p50", 0.5), ("p99", 0.99)):
        extra = percentile(service, q) - percentile(direct, q)
        print(f"   core overhead at {label}: {extra * 1000:+.2f} ms "
              f"(service/bare {percentile(service, q) / percentile(direct, q):.2f}x)")
    print(f"   event-loop lag during the service run: p99 "
          f"{percentile(service_lag, 0.99) * 1000:.1f} ms, max {max(service_lag) * 1000:.1f} ms")


async def main_async(args: argparse.Namespace) -> None:
    header(f"core overhead: {args.users} users x {args.jobs} jobs, {args.backend} backend "
           f"(max_concurrency {args.concurrency})")
    size = (96, 72) if args.backend == "thumb-echo" else (640, 480)
    photo = photo_jpeg(size, grain=5)
    print(f"   input: {size[0]}x{size[1]} JPEG, {len(photo) / 1024:.0f} KB; caption {CAPTION!r}")
    with tempfile.TemporaryDirectory() as folder:
        config = service_config(Path(folder) / "bench.db", backend=args.backend,
                                concurrency=args.concurrency)
        async with running_app(config) as app:
            warm = await app.service.submit(GenerationRequest(
                user=UserRef("telegram", "1"), chat=ChatRef("telegram", "1", private=True),
                image=photo, prompt="warm up", overrides=parse_caption(CAPTION).overrides))
            template_done = await warm.wait()
            assert isinstance(template_done, Done)
            template = ProviderJob(job_id="t", params=template_done.params,
                                   image=template_done.images[0], timeout=60)
            print(f"   output size {template.params.width}x{template.params.height}")
            print(f"-- paced: each user pauses {args.think_ms:.0f} ms on average between jobs")
            await _pass(app, photo, args, args.think_ms / 1000, template)
            print("-- saturated: no pause (every user always has a job in flight)")
            await _pass(app, photo, args, 0.0, template)
            drift = await app.storage.drift()
            print(f"   ledger drift after all jobs: {drift or 'none'}")
    print("   target: p99 <= 25 ms per job at 50 users (paced)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--jobs", type=int, default=20, help="jobs per user in each pass")
    parser.add_argument("--think-ms", type=float, default=500.0,
                        help="mean pause between a user's jobs in the paced pass")
    parser.add_argument("--concurrency", type=int, default=4, help="backend max_concurrency")
    parser.add_argument("--backend", choices=("thumb-echo", "echo"), default="thumb-echo")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
