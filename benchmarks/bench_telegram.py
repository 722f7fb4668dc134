"""Telegram end to end: the real adapter on aiogram against the fake Bot API, vs a bare bot.

Users send a captioned photo, wait for the bot's photo in reply, and send the next one (a
closed loop), at 1, 10 and 100 concurrent users. The bot under test is the whole project:
``run_telegram`` polling the fake server, the core with credits on SQLite, and the instant
``echo`` backend. The bare bot is plain aiogram on the same fake server: it downloads the
photo and sends it straight back. Updates per second and latency (from the update being
queued at the fake server to the ``sendPhoto`` that answers it) for both, and the ratio.

The project does strictly more per update (a status message that is later removed, the
credit reservation and commit, probing the upload, preparing the provider's input, a result
with buttons), so the ratio is the price of all that.

    python benchmarks/bench_telegram.py [--users 1 10 100] [--rounds 30 10 3] [--backend echo]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aiogram import Bot, Dispatcher, F, Router
from aiogram.types import BufferedInputFile, Message, ReplyParameters

from adapters.telegram import run_telegram
from benchmarks.common import describe_ms, header, photo_jpeg, service_config
from bot.app import running_app
from bot.config import build_config
from tests.fakes.telegram_api import TOKEN, FakeTelegram

CAPTION = "/img2img a watercolor painting of the harbour"
FIRST_USER = 10_000


@asynccontextmanager
async def the_project(fake: FakeTelegram, folder: Path, backend: str) -> AsyncIterator[None]:
    """The project's bot: the app from config, ``run_telegram`` polling the fake."""
    base = service_config(folder / "bench.db", backend=backend, concurrency=4)
    raw = base.model_dump(mode="json")
    raw["providers"] = {"echo": {"type": backend, "cost": 1, "max_concurrency": 4}}
    raw["telegram"] = {"token": TOKEN, "api_base": fake.base_url}
    raw["limits"]["max_queued_per_user"] = 3
    config = build_config(raw, environ={})
    async with running_app(config) as app:
        stop = asyncio.Event()
        task = asyncio.create_task(run_telegram(app, stop))
        await fake.wait_for(lambda: fake.counts["getUpdates"] or task.done(), 10,
                            what="polling to start")
        try:
            yield
        finally:
            stop.set()
            await asyncio.wait_for(task, 10)


@asynccontextmanager
async def bare_bot(fake: FakeTelegram, folder: Path, backend: str) -> AsyncIterator[None]:
    """A plain aiogram bot: download the photo, send it back as the reply."""
    router = Router()

    @router.message(F.photo)
    async def echo(message: Message, bot: Bot) -> None:
        assert message.photo
        file = await bot.get_file(message.photo[-1].file_id)
        assert file.file_path
        data = await bot.download_file(file.file_path)
        assert data is not None
        await message.answer_photo(BufferedInputFile(data.read(), "photo.jpg"),
                                   reply_parameters=ReplyParameters(
                                       message_id=message.message_id))

    bot = fake.make_bot()
    dp = Dispatcher()
    dp.include_router(router)
    polling = asyncio.create_task(dp.start_polling(bot, handle_signals=False,
                                                   close_bot_session=False))
    await fake.wait_for(lambda: fake.counts["getUpdates"], 10, what="polling to start")
    try:
        yield
    finally:
        await dp.stop_polling()
        await polling
        await bot.session.close()


async def _level(fake: FakeTelegram, photo: bytes, users: int,
                 rounds: int) -> tuple[list[float], float]:
    latencies: list[float] = []
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

    started = time.perf_counter()
    await asyncio.gather(*(user(user_id) for user_id in ids))
    return latencies, time.perf_counter() - started


async def _measure(name: str, runner: Callable[..., object], photo: bytes,
                   args: argparse.Namespace) -> dict[int, float]:
    rates: dict[int, float] = {}
    with tempfile.TemporaryDirectory() as folder:
        async with FakeTelegram(token=TOKEN, long_poll=0.5) as fake, \
                runner(fake, Path(folder), args.backend):  # type: ignore[attr-defined]
            await _level(fake, photo, 2, 2)  # warm up: imports, connections, first queries
            for users, rounds in zip(args.users, args.rounds, strict=True):
                fake.counts.clear()
                cpu = time.process_time()
                latencies, elapsed = await _level(fake, photo, users, rounds)
                cpu = (time.process_time() - cpu) / len(latencies)
                rates[users] = len(latencies) / elapsed
                print(f"   {name:<8} {users:>3} users: {rates[users]:7.1f} updates/s  "
                      f"{describe_ms(latencies)}")
                calls = ", ".join(f"{method} {count / len(latencies):.1f}" for method, count
                                  in sorted(fake.counts.items()) if method != "getUpdates")
                print(f"   {'':<8} CPU {cpu * 1000:.1f} ms per update (bot and fake server "
                      f"together); API calls per update: {calls}")
                fake.photo_sends.clear()
    return rates


async def main_async(args: argparse.Namespace) -> None:
    header(f"Telegram end to end: real aiogram and the fake Bot API, {args.backend} backend")
    photo = photo_jpeg((1280, 960), grain=8, quality=87)
    print(f"   each update: a 1280x960 JPEG photo ({len(photo) // 1024} KB) captioned "
          f"{CAPTION!r}")
    measured: dict[str, dict[int, float]] = {}
    for name, runner in (("bare", bare_bot), ("project", the_project)):
        if args.only in (None, name):
            measured[name] = await _measure(name, runner, photo, args)
    if args.only:
        return
    for users in args.users:
        ratio = measured["project"][users] / measured["bare"][users]
        print(f"   throughput project/bare at {users:>3} users: {ratio:.2f}x  (target >= 0.7x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, nargs="+", default=[1, 10, 100])
    parser.add_argument("--rounds", type=int, nargs="+", default=[30, 10, 3],
                        help="photos each user sends at each level")
    parser.add_argument("--backend", choices=("echo", "thumb-echo"), default="echo",
                        help="thumb-echo prepares 64x64 inputs, leaving out image work")
    parser.add_argument("--only", choices=("bare", "project"), help="run one side (profiling)")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
