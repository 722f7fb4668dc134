"""Telegram end to end: the real adapter on aiogram against the fake Bot API, vs two anchors.

Users send a captioned photo, wait for the bot's photo in reply, and send the next one (a
closed loop), at 1, 10 and 100 concurrent users. The fake Bot API server and the users run in
a process of their own, so the bot's CPU and the fake's are measured apart and neither slows
the other's event loop. Three bots, in the same run:

- ``echo``: plain aiogram that downloads the photo and sends it straight back;
- ``img2img``: plain aiogram doing the least any img2img bot must: download, decode at draft
  scale, resize to the provider's size, encode as JPEG, send the photo back;
- ``project``: ``run_telegram`` polling the fake, the core with credits on SQLite, the instant
  ``echo`` backend taking ``--echo-slots`` jobs at once (64 by default: like the anchors, every
  job starts at once; with 4 most jobs queue at 100 users).

Updates per second, p50/p99 latency (from the update being queued at the fake server to the
``sendPhoto`` that answers it), Bot API calls per job and CPU per update of bot and fake.

    python benchmarks/bench_telegram.py [--users 1 10 100] [--rounds 30 10 3] [--backend echo]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import multiprocessing
import os
import pstats
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, NamedTuple

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aiogram import Bot, Dispatcher, F, Router
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.types import BufferedInputFile, Message, ReplyParameters
from PIL import Image

from adapters.telegram import run_telegram
from benchmarks.common import (
    CollectorPauses,
    SlowEcho,
    describe_ms,
    header,
    median,
    percentile,
    photo_jpeg,
    service_config,
)
from bot.app import running_app
from bot.cli import freeze_startup_objects
from bot.config import build_config
from tests.fakes.telegram_api import TOKEN, FakeTelegram

CAPTION = "/img2img a watercolor painting of the harbour"
FIRST_USER = 10_000
JOB_METHODS = ("getFile", "sendMessage", "editMessageText", "deleteMessage", "sendChatAction",
               "sendPhoto", "sendDocument")
SLOW_CONCURRENCY = 16  # --backend slow-echo: 2 s a job, 16 at a time
PROVIDER_SIZE = (592, 440)  # what the echo backend's rules make of a 4:3 photo at 512x512 area


@asynccontextmanager
async def the_project(base_url: str, folder: Path,
                      args: argparse.Namespace) -> AsyncIterator[None]:
    """The project's bot: the app from config, ``run_telegram`` polling the fake."""
    backend = args.backend
    base = service_config(folder / "bench.db", backend=backend)
    raw = base.model_dump(mode="json")
    concurrency = SLOW_CONCURRENCY if backend == "slow-echo" else args.echo_slots
    raw["providers"] = {"echo": {"type": backend, "cost": 1, "max_concurrency": concurrency}}
    # The flood limits off: they are Telegram's policy (30 results/s at most), not the bot's cost,
    # and the anchors do not keep them either.
    raw["telegram"] = {"token": TOKEN, "api_base": base_url, "limits": {
        "chat_per_second": 1e6, "group_per_minute": 1e6, "group_burst": 1000,
        "global_per_second": 1e6}}
    raw["limits"]["max_queued_per_user"] = 3
    config = build_config(raw, environ={})
    async with running_app(config) as app:
        stop = asyncio.Event()
        task = asyncio.create_task(run_telegram(app, stop))
        freeze_startup_objects()  # as ``img2img-bot run`` does once it has started
        await asyncio.sleep(1.0)  # getMe, setMyCommands, the first getUpdates
        try:
            yield
        finally:
            stop.set()
            await asyncio.wait_for(task, 10)


def _draft_resize_jpeg(data: bytes) -> bytes:
    """The img2img anchor's image work: draft decode, resize, JPEG."""
    with Image.open(io.BytesIO(data)) as img:
        img.draft("RGB", PROVIDER_SIZE)
        small = img.convert("RGB").resize(PROVIDER_SIZE, Image.Resampling.BICUBIC)
    out = io.BytesIO()
    small.save(out, "JPEG", quality=92)
    return out.getvalue()


def _plain_router(work: Callable[[bytes], bytes] | None) -> Router:
    router = Router()

    @router.message(F.photo)
    async def answer(message: Message, bot: Bot) -> None:
        assert message.photo
        file = await bot.get_file(message.photo[-1].file_id)
        assert file.file_path
        data = await bot.download_file(file.file_path)
        assert data is not None
        body = data.read()
        if work is not None:
            body = await asyncio.to_thread(work, body)
        await message.answer_photo(BufferedInputFile(body, "photo.jpg"),
                                   reply_parameters=ReplyParameters(
                                       message_id=message.message_id))

    return router


@asynccontextmanager
async def _plain_bot(base_url: str, work: Callable[[bytes], bytes] | None) -> AsyncIterator[None]:
    bot = Bot(TOKEN, session=AiohttpSession(api=TelegramAPIServer.from_base(base_url)))
    dp = Dispatcher()
    dp.include_router(_plain_router(work))
    polling = asyncio.create_task(dp.start_polling(bot, handle_signals=False,
                                                   close_bot_session=False))
    freeze_startup_objects()  # what the project does at startup, done for the anchors too
    await asyncio.sleep(0.5)
    try:
        yield
    finally:
        await dp.stop_polling()
        await polling
        await bot.session.close()


def echo_bot(base_url: str, folder: Path, args: argparse.Namespace) -> Any:
    """Plain aiogram: download the photo, send it back as the reply."""
    return _plain_bot(base_url, None)


def img2img_bot(base_url: str, folder: Path, args: argparse.Namespace) -> Any:
    """Plain aiogram doing an img2img bot's least work on the photo before sending it."""
    return _plain_bot(base_url, _draft_resize_jpeg)


# -- the fake Bot API and the users, in their own process -------------------------------------
async def _level(fake: FakeTelegram, photo: bytes, users: int,
                 rounds: int) -> tuple[list[float], float, list[float]]:
    """Latencies, the level's duration, and when each reply arrived (seconds from the start)."""
    latencies: list[float] = []
    replied: list[float] = []
    ids = [FIRST_USER + i for i in range(users)]
    for user_id in ids:
        fake.add_chat(user_id)

    async def user(user_id: int) -> None:
        for _ in range(rounds):
            before = len(fake.photos(user_id))
            started = time.perf_counter()
            fake.push_update(fake.build.photo(photo, caption=CAPTION, chat_id=user_id,
                                              user_id=user_id, thumbs=False))
            await fake.wait_for(lambda before=before: len(fake.photos(user_id)) > before, 120,
                                what=f"the reply to user {user_id}")
            latencies.append(time.perf_counter() - started)
            replied.append(time.perf_counter() - begun)

    begun = time.perf_counter()
    await asyncio.gather(*(user(user_id) for user_id in ids))
    return latencies, time.perf_counter() - begun, sorted(replied)


def fake_process(conn: Connection) -> None:
    """Child: run the fake server; on ("level", users, rounds) run the users and report."""
    asyncio.run(_serve_fake(conn))


async def _serve_fake(conn: Connection) -> None:
    photo = photo_jpeg((1280, 960), grain=8, quality=87)
    async with FakeTelegram(token=TOKEN, long_poll=0.5) as fake:
        freeze_startup_objects()  # a real server would not stop for our imports either
        conn.send(fake.base_url)
        while True:
            command = await asyncio.to_thread(conn.recv)
            if command[0] == "stop":
                return
            _, users, rounds = command
            fake.counts.clear()
            cpu, mark = time.process_time(), PAUSES.mark()
            latencies, elapsed, replied = await _level(fake, photo, users, rounds)
            counts = dict(fake.counts)
            conn.send((latencies, elapsed, counts, time.process_time() - cpu, replied,
                       PAUSES.since(mark)))
            fake.photo_sends.clear()


async def _measure(name: str, runner: Callable[..., Any],
                   args: argparse.Namespace) -> dict[int, Level]:
    """Rates, p50 and reply times per user count for one bot; the fake runs in a fresh child
    process."""
    measured: dict[int, Level] = {}
    parent, child = multiprocessing.Pipe()
    process = multiprocessing.get_context("spawn").Process(target=fake_process, args=(child,))
    process.start()
    try:
        base_url = await asyncio.to_thread(parent.recv)
        with tempfile.TemporaryDirectory() as folder:
            async with runner(base_url, Path(folder), args):
                parent.send(("level", 2, 2))  # warm up: imports, connections, first queries
                await asyncio.to_thread(parent.recv)
                for users, rounds in zip(args.users, args.rounds, strict=True):
                    profile = cProfile.Profile() if args.profile else None
                    threads_before = _thread_cpu()
                    cpu, mark = time.process_time(), PAUSES.mark()
                    if profile:
                        profile.enable()
                    parent.send(("level", users, rounds))
                    latencies, elapsed, counts, fake_cpu, replied, fake_pauses = (
                        await asyncio.to_thread(parent.recv))
                    if profile:
                        profile.disable()
                    bot_cpu = time.process_time() - cpu
                    jobs = len(latencies)
                    _report_threads(threads_before, _thread_cpu(), jobs)
                    if profile:
                        _report_profile(profile, args.profile, f"{name}-{users}", jobs)
                    rate = jobs / elapsed
                    measured[users] = Level(rate, percentile(latencies, 0.5), replied)
                    calls = sum(counts.get(m, 0) for m in JOB_METHODS) / jobs
                    detail = ", ".join(f"{m} {c / jobs:.2f}" for m, c in sorted(counts.items())
                                       if m in JOB_METHODS)
                    print(f"   {name:<8} {users:>3} users: {rate:7.1f} updates/s  "
                          f"{describe_ms(latencies)}")
                    print(f"   {'':<8} CPU per update: bot {bot_cpu / jobs * 1000:.1f} ms, fake "
                          f"{fake_cpu / jobs * 1000:.1f} ms; Bot API calls per job {calls:.2f} "
                          f"({detail})")
                    print(f"   {'':<8} cycle collector: bot {PAUSES.since(mark)}; "
                          f"fake {fake_pauses}")
        parent.send(("stop",))
    finally:
        process.join(10)
        if process.is_alive():
            process.kill()
    return measured


PAUSES = CollectorPauses()  # of this process: the bench and its bots, or the fake's child


class Level(NamedTuple):
    """One bot at one user count: updates/s over the whole run, p50, reply times."""

    rate: float
    p50: float
    replied: list[float]


def steady_rate(replied: list[float], batch: int) -> tuple[float, int] | None:
    """Replies per second between the end of the first batch and the end of the last full
    batch before the final drain (reply number ``batch`` to number ``k * batch``, k as large as
    leaves one batch after it), and how many replies that window counts; None when the run
    has fewer than three batches.

    A closed loop against a slow backend finishes its jobs in batches of ``batch``: the start
    and the drain of the last batch leave slots empty that no bot can fill, so a whole-run rate
    is capped below the ideal (``whole_run_ceiling``). Both ends of the window at batch
    boundaries keep whole batches inside it.
    """
    last = (len(replied) - batch) // batch * batch
    if last <= batch:
        return None
    return (last - batch) / (replied[last - 1] - replied[batch - 1]), last - batch


def whole_run_ceiling(jobs: int, batch: int, seconds: float) -> float:
    """The best whole-run rate against the ideal: ``jobs`` take ceil(jobs / batch) batches."""
    return jobs / (-(-jobs // batch) * seconds) / (batch / seconds)


def _report_slow(users: int, level: Level) -> None:
    """Jobs/s against a 2-s backend's ideal: in steady state, and over the whole run."""
    ideal = SLOW_CONCURRENCY / SlowEcho.seconds
    jobs = len(level.replied)
    ceiling = whole_run_ceiling(jobs, SLOW_CONCURRENCY, SlowEcho.seconds)
    print(f"   slow backend at {users:>3} users, ideal {ideal:.1f} jobs/s "
          f"({SLOW_CONCURRENCY} / {SlowEcho.seconds:.0f} s), target >= 0.95x in steady state:")
    steady = steady_rate(level.replied, SLOW_CONCURRENCY)
    if steady is None:
        print("     steady state: too few jobs for a window (use more rounds)")
    else:
        print(f"     steady state: {steady[0]:.2f} jobs/s = {steady[0] / ideal:.2f}x "
              f"({steady[1]} replies between the first batch's end and the last full batch)")
    print(f"     whole run:    {level.rate:.2f} jobs/s = {level.rate / ideal:.2f}x of the ideal, "
          f"{level.rate / ideal / ceiling:.2f}x of the {ceiling:.2f}x a perfect bot reaches "
          f"with {jobs} jobs in batches of {SLOW_CONCURRENCY}")


def _thread_cpu() -> dict[str, float]:
    """CPU seconds so far of each live thread of this process, by thread name (Linux)."""
    tick = os.sysconf("SC_CLK_TCK")
    seconds: dict[str, float] = {}
    for thread in threading.enumerate():
        try:
            stat = Path(f"/proc/self/task/{thread.native_id}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        seconds[thread.name] = (int(fields[11]) + int(fields[12])) / tick
    return seconds


def _report_threads(before: dict[str, float], after: dict[str, float], jobs: int) -> None:
    """Print CPU per update of each thread group (numbered pool threads summed by prefix)."""
    groups: dict[str, float] = {}
    for name, spent in after.items():
        group = name.rstrip("0123456789_").rstrip("-") or name
        groups[group] = groups.get(group, 0.0) + spent - before.get(name, 0.0)
    shown = ", ".join(f"{group} {spent / jobs * 1000:.1f} ms"
                      for group, spent in sorted(groups.items(), key=lambda kv: -kv[1]) if spent)
    print(f"   CPU per update by thread: {shown}")


def _report_profile(profile: cProfile.Profile, folder: Path, label: str, jobs: int) -> None:
    """Write the bot's event-loop thread profile for one level and print its top functions."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{label}.prof"
    profile.dump_stats(path)
    stats = pstats.Stats(str(path))
    rows = sorted(stats.stats.items(), key=lambda item: item[1][2], reverse=True)  # type: ignore[attr-defined]
    print(f"   profile {path} (event-loop thread; ms per update, own / with callees):")
    for (file, line, func), (_, calls, own, cumulative, _) in rows[:25]:
        where = f"{Path(file).name}:{line}" if line else file
        print(f"     {own / jobs * 1000:6.2f} / {cumulative / jobs * 1000:6.2f}  "
              f"{calls / jobs:6.1f} calls  {func} ({where})")


async def main_async(args: argparse.Namespace) -> None:
    slots = SLOW_CONCURRENCY if args.backend == "slow-echo" else args.echo_slots
    header(f"Telegram end to end: real aiogram and the fake Bot API in its own process, "
           f"{args.backend} backend, {slots} jobs at once")
    photo = photo_jpeg((1280, 960), grain=8, quality=87)
    print(f"   each update: a 1280x960 JPEG photo ({len(photo) // 1024} KB) captioned "
          f"{CAPTION!r}")
    rounds: list[dict[str, dict[int, Level]]] = []
    for repeat in range(args.repeat):
        if args.repeat > 1:
            print(f"   -- pass {repeat + 1} of {args.repeat}")
        measured: dict[str, dict[int, Level]] = {}
        for name, runner in (("echo", echo_bot), ("img2img", img2img_bot),
                             ("project", the_project)):
            if args.only in (None, name):
                measured[name] = await _measure(name, runner, args)
        rounds.append(measured)
    if args.backend == "slow-echo":
        for measured in rounds:
            for users, level in measured["project"].items():
                _report_slow(users, level)
    if args.only:
        return
    for users in args.users:
        rate = [m["project"][users].rate / m["img2img"][users].rate for m in rounds]
        p50 = [m["project"][users].p50 / m["img2img"][users].p50 for m in rounds]
        echo = [m["project"][users].rate / m["echo"][users].rate for m in rounds]
        each = f" (passes: {', '.join(f'{r:.2f}x' for r in rate)})" if len(rounds) > 1 else ""
        print(f"   at {users:>3} users: throughput project/img2img {median(rate):.2f}x{each} "
              f"(target >= 0.8x at 10 and 100), project/echo {median(echo):.2f}x; "
              f"p50 project/img2img {median(p50):.2f}x (target <= 1.3x at 1)")
    if len(rounds) > 1:
        print(f"   (medians of {len(rounds)} passes; each pass runs the three bots one after "
              f"another, so a change in the machine's load shows as a spread between passes)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, nargs="+", default=[1, 10, 100])
    parser.add_argument("--rounds", type=int, nargs="+", default=[30, 10, 3],
                        help="photos each user sends at each level")
    parser.add_argument("--backend", choices=("echo", "thumb-echo", "slow-echo"), default="echo",
                        help="thumb-echo prepares 64x64 inputs, leaving out image work; "
                        "slow-echo takes 2 s a job, 16 at a time (use with --only project)")
    parser.add_argument("--echo-slots", type=int, default=64, metavar="N",
                        help="jobs the echo backend runs at once (default 64, the most a "
                        "backend may have: the anchors start every job at once; 4 makes the "
                        "project queue jobs, store and claim them, and show their status)")
    parser.add_argument("--repeat", type=int, default=1, metavar="N",
                        help="run the three bots N times in turn and print the median ratios "
                        "(a shared machine's load moves between bots)")
    parser.add_argument("--only", choices=("echo", "img2img", "project"),
                        help="run one bot (profiling)")
    parser.add_argument("--profile", type=Path, metavar="FOLDER",
                        help="profile the bot's event-loop thread at each level (cProfile, "
                        "imports and warm-up left out) and write FOLDER/<bot>-<users>.prof")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
