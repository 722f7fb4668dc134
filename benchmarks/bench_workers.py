"""Workers on the durable queue: jobs/s and claim-to-start latency against a 1-s backend.

The backend is the fake WebUI (tests/fakes/a1111.py) answering each img2img request after
``--delay`` seconds, side by side (``parallel``), in a process of its own; the bot allows it
``--slots`` requests at once,
so the ideal is slots / delay jobs per second (16 by default). Four set-ups run in one go:

- ``postgres, 1 worker`` and ``postgres, 2 workers``: ``--role worker`` processes run and
  deliver the jobs that this process (as a gateway) queues;
- ``sqlite, 1 process`` and ``postgres, 1 process``: one ``--role all`` process queues and
  runs them itself.

Jobs/s is jobs / (last delivery - first start on the backend). Claim-to-start is the time
from a job's claim in storage to its request reaching the backend (the worker's own work:
the upload read back, the input prepared, the HTTP request); answer-to-stored is from the
backend's answer to the result stored (the slot is still taken: decode, checks, the write);
queue wait is from the job's creation to its claim, which the slots dominate. Deliveries go
to a courier that only counts them, so no platform's cost is in the figures.

    .venv/bin/python benchmarks/bench_workers.py [--jobs 160] [--delay 1.0] [--slots 16]

PostgreSQL: ``$IMG2IMG_TEST_POSTGRES_URL``, or a throwaway server started from the installed
binaries (as the tests do).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import header, percentile
from bot.app import running_app
from bot.config import Config, build_config
from bot.events import Done
from bot.jobs import GenerationRequest, JobHandle
from bot.models import ChatRef, UserRef
from storage.base import FINAL_STATUSES, JobRecord
from tests.fakes.server import jpeg_bytes

PLATFORM = "bench"


# -- the backend, in its own process -----------------------------------------------------------
def backend_process(conn: Connection, delay: float) -> None:
    asyncio.run(_serve_backend(conn, delay))


async def _serve_backend(conn: Connection, delay: float) -> None:
    from aiohttp import web

    from tests.fakes.a1111 import FakeA1111

    # (arrival, answer, prompt) of each img2img request, in time.time() as storage keeps it
    arrivals: list[tuple[float, float, str]] = []

    @web.middleware
    async def stamp(request: web.Request, handler: Any) -> web.StreamResponse:
        if not request.path.endswith("/img2img"):
            response: web.StreamResponse = await handler(request)
            return response
        arrived = time.time()
        prompt = str((await request.json()).get("prompt", ""))
        response = await handler(request)
        arrivals.append((arrived, time.time(), prompt))
        return response

    fake = FakeA1111(delay=delay, parallel=True)
    app = web.Application(client_max_size=64 * 1024 * 1024, middlewares=[stamp])
    fake.routes(app)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    assert site._server is not None
    conn.send(site._server.sockets[0].getsockname()[1])  # type: ignore[attr-defined]
    loop = asyncio.get_running_loop()
    while True:
        command = await loop.run_in_executor(None, conn.recv)
        if command == "stop":
            break
        conn.send((list(arrivals), fake.max_in_flight))
        arrivals.clear()
        fake.max_in_flight = 0
    await runner.cleanup()


# -- the bot's side ---------------------------------------------------------------------------
def config_for(url: str, backend: str, slots: int) -> Config:
    return build_config({
        "storage": {"url": url},
        "credits": {"initial": 1000, "daily_free": 0},
        "limits": {"max_queued_per_user": 1000, "max_queue": 10_000},
        "defaults": {"provider": "webui"},
        "providers": {"webui": {"type": "a1111", "url": backend, "cost": 1, "timeout": 60,
                                "max_concurrency": slots, "poll_interval": 0.5}},
    }, {})


class CountingCourier:
    """Delivers nowhere; counts what it was handed."""

    def __init__(self) -> None:
        self.delivered = 0

    async def deliver(self, job: JobRecord, done: Done) -> str:
        self.delivered += 1
        return f"{PLATFORM}:{job.id}"

    async def notify(self, job: JobRecord, text: str) -> None:
        return None

    def resume(self, handle: JobHandle, job: JobRecord) -> None:
        return None


def worker_process(url: str, backend: str, slots: int, ready: Any, stop: Any) -> None:
    asyncio.run(_work(url, backend, slots, ready, stop))


async def _work(url: str, backend: str, slots: int, ready: Any, stop: Any) -> None:
    async with running_app(config_for(url, backend, slots), role="worker") as app:
        app.service.register_courier(PLATFORM, CountingCourier())
        ready.set()
        # A multiprocessing event has no async wait: a thread waits for it.
        await asyncio.get_running_loop().run_in_executor(None, stop.wait)
        await app.service.stop()


async def _submit(app: Any, jobs: int) -> list[str]:
    photo = jpeg_bytes((96, 64))
    ids = []
    for index in range(jobs):
        user = UserRef(PLATFORM, str(index % 50))
        handle = await app.service.submit(GenerationRequest(
            user=user, chat=ChatRef(PLATFORM, user.id, private=True), image=photo,
            prompt=f"job {index}"))
        ids.append(handle.id)
    return ids


async def _finished(app: Any, ids: list[str], timeout: float) -> list[JobRecord]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        statuses = await app.storage.job_statuses(ids)
        if all(statuses.get(i) in FINAL_STATUSES for i in ids):
            break
        await asyncio.sleep(0.2)
    return [job for i in ids if (job := await app.storage.get_job(i)) is not None]


@dataclass(frozen=True, slots=True)
class Figures:
    name: str
    jobs_per_s: float
    claim_to_start: list[float]
    queue_wait: list[float]
    answer_to_stored: list[float]
    delivered: int
    max_in_flight: int


def _figures(name: str, jobs: list[JobRecord], arrivals: list[tuple[float, float, str]],
             max_in_flight: int) -> Figures:
    arrived = {prompt: at for at, _, prompt in arrivals}
    answered = {prompt: at for _, at, prompt in arrivals}
    answer_to_stored = [j.generated_at - answered[str(j.params.get("prompt"))] for j in jobs
                        if j.generated_at is not None and str(j.params.get("prompt")) in answered]
    claim_to_start = [arrived[str(j.params.get("prompt"))] - j.started_at for j in jobs
                      if j.started_at is not None and str(j.params.get("prompt")) in arrived]
    queue_wait = [j.started_at - j.created_at for j in jobs if j.started_at is not None]
    done = [j for j in jobs if j.status == "delivered" and j.finished_at is not None]
    first = min(arrived.values(), default=0.0)
    last = max((j.finished_at or 0.0 for j in done), default=first)
    rate = len(done) / (last - first) if last > first else 0.0
    return Figures(name, rate, claim_to_start, queue_wait, answer_to_stored, len(done),
                   max_in_flight)


@contextlib.asynccontextmanager
async def workers(url: str, backend: str, slots: int, count: int) -> AsyncIterator[None]:
    context = multiprocessing.get_context("spawn")
    stop = context.Event()
    readies = [context.Event() for _ in range(count)]
    procs = [context.Process(target=worker_process, args=(url, backend, slots, ready, stop))
             for ready in readies]
    for proc in procs:
        proc.start()
    try:
        for ready in readies:
            await asyncio.get_running_loop().run_in_executor(None, ready.wait, 120)
        yield
    finally:
        stop.set()
        for proc in procs:
            await asyncio.get_running_loop().run_in_executor(None, proc.join, 30)


async def run_setup(name: str, url: str, backend: str, backend_conn: Connection,
                    args: argparse.Namespace, worker_count: int) -> Figures:
    config = config_for(url, backend, args.slots)
    if worker_count:  # this process is the gateway; workers run the jobs
        async with workers(url, backend, args.slots, worker_count), \
                running_app(config, role="gateway") as app:
            # A courier here too: a platform served nowhere else would pin its jobs to this
            # process; this gateway claims nothing, so it never delivers.
            app.service.register_courier(PLATFORM, CountingCourier())
            ids = await _submit(app, args.jobs)
            jobs = await _finished(app, ids, args.jobs * args.delay + 120)
    else:  # one process queues and runs
        async with running_app(config, role="all") as app:
            app.service.register_courier(PLATFORM, CountingCourier())
            ids = await _submit(app, args.jobs)
            jobs = await _finished(app, ids, args.jobs * args.delay + 120)
    backend_conn.send("report")
    arrivals, max_in_flight = backend_conn.recv()
    return _figures(name, jobs, arrivals, max_in_flight)


async def main_async(args: argparse.Namespace) -> None:
    from tests.postgres_server import HOW_TO_RUN, fresh_database, some_server

    header(f"bench_workers: {args.jobs} jobs, a {args.delay:g}-s backend with {args.slots} "
           f"slots (ideal {args.slots / args.delay:.1f} jobs/s)")
    parent, child = multiprocessing.Pipe()
    backend = multiprocessing.get_context("spawn").Process(target=backend_process,
                                                           args=(child, args.delay))
    backend.start()
    backend_url = f"http://127.0.0.1:{parent.recv()}"
    results: list[Figures] = []
    try:
        with some_server() as server:
            if server is None:
                raise SystemExit(f"PostgreSQL is needed: {HOW_TO_RUN}")
            setups: list[tuple[str, str, int]] = [
                ("postgres, 1 worker", "postgres", 1), ("postgres, 2 workers", "postgres", 2),
                ("sqlite, 1 process", "sqlite", 0), ("postgres, 1 process", "postgres", 0)]
            for name, kind, count in setups:
                if kind == "sqlite":
                    with tempfile.TemporaryDirectory() as folder:
                        url = f"sqlite:///{Path(folder) / 'bench.db'}"
                        results.append(await run_setup(name, url, backend_url, parent, args,
                                                       count))
                else:
                    async with fresh_database(server) as url:
                        results.append(await run_setup(name, url, backend_url, parent, args,
                                                       count))
                print(_line(results[-1], args), flush=True)
    finally:
        parent.send("stop")
        backend.join(10)
    by_name = {f.name: f for f in results}
    ideal = args.slots / args.delay
    print("ratios:")
    for name, figures in by_name.items():
        print(f"  {name:22} / ideal {figures.jobs_per_s / ideal:5.2f}x")
    two = _ratio(by_name, "postgres, 2 workers", "postgres, 1 worker")
    print(f"  2 workers / 1 worker (postgres)   {two}")
    print(f"  postgres / sqlite (1 process)     "
          f"{_ratio(by_name, 'postgres, 1 process', 'sqlite, 1 process')}")


def _ratio(by_name: dict[str, Figures], top: str, bottom: str) -> str:
    a, b = by_name[top].jobs_per_s, by_name[bottom].jobs_per_s
    return f"{a / b:5.2f}x" if b else "n/a"


def _line(f: Figures, args: argparse.Namespace) -> str:
    def ms(values: list[float], q: float) -> str:
        return f"{percentile(values, q) * 1000:7.1f}"

    return (f"  {f.name:22} {f.jobs_per_s:6.2f} jobs/s  claim-to-start p50 "
            f"{ms(f.claim_to_start, 0.5)} ms p99 {ms(f.claim_to_start, 0.99)} ms  answer-to-"
            f"stored p50 {ms(f.answer_to_stored, 0.5)} ms p99 {ms(f.answer_to_stored, 0.99)} ms  "
            f"queue wait p50 {ms(f.queue_wait, 0.5)} ms  delivered {f.delivered}/{args.jobs}  "
            f"backend max in flight {f.max_in_flight}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=160)
    parser.add_argument("--delay", type=float, default=1.0, help="seconds per backend request")
    parser.add_argument("--slots", type=int, default=16, help="the backend's max_concurrency")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
