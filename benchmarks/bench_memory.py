"""Memory: peak RSS with 500 queued jobs each holding its own 5 MB photo.

The backend is blocked (an echo backend that waits on a gate), so every job stays queued; the
photos are separate 5 MB JPEGs (12 MP), made one at a time just before each submit and
dropped by the caller afterwards, as an adapter does after downloading an upload. Then the
gate opens and every job runs. RSS is read from /proc (the current value) and getrusage (the
peak), against the RSS after start-up.

A queued job's upload is stored in the database with the job (so it survives a restart and
any process can run it), and read back only when the job starts; nothing of it stays in the
process's memory while it waits.

    python benchmarks/bench_memory.py [--jobs 500] [--photo-mb 5]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import (
    GatedEcho,
    current_rss_mb,
    distinct_copy,
    header,
    peak_rss_mb,
    photo_jpeg,
    register_gated_echo,
    reset_peak_rss,
    service_config,
)
from bot import imaging
from bot.app import running_app
from bot.events import Done
from bot.jobs import GenerationRequest
from bot.models import ChatRef, UserRef


async def _pass(photo: bytes, jobs: int) -> float:
    """Queue ``jobs`` uploads behind the closed gate, then run them; returns the peak RSS."""
    register_gated_echo()
    gc.collect()
    with tempfile.TemporaryDirectory() as folder:
        config = service_config(Path(folder) / "memory.db", backend="gated-echo",
                                concurrency=2)
        async with running_app(config) as app:
            base = current_rss_mb()
            reset = reset_peak_rss()
            print(f"   RSS after start-up: {base:.0f} MiB; the peak is counted from here"
                  f"{'' if reset else ' (cannot reset it here: it includes making the photo)'}")
            handles = []
            started = time.perf_counter()
            for index in range(jobs):
                user = UserRef("telegram", str(index))
                upload = distinct_copy(photo, index)
                handles.append(await app.service.submit(GenerationRequest(
                    user=user, chat=ChatRef("telegram", user.id, private=True), image=upload,
                    prompt="a watercolor painting")))
                del upload
            submitted = time.perf_counter() - started
            gc.collect()
            queued = current_rss_mb()
            print(f"   {len(handles)} jobs submitted in {submitted:.1f} s; "
                  f"{await app.service.in_progress()} waiting in the database")
            print(f"   RSS with all of them waiting: {queued:.0f} MiB "
                  f"(+{queued - base:.0f} MiB over start-up)")
            GatedEcho.gate.set()
            while handles:  # an adapter delivers each result and lets go of its handle
                final = await handles.pop(0).wait()
                assert isinstance(final, Done), final
            del final
            gc.collect()
            print(f"   RSS after every job ran: {current_rss_mb():.0f} MiB")
    peak = peak_rss_mb()
    print(f"   peak RSS while queued and running: {peak:.0f} MiB")
    return peak


async def main_async(args: argparse.Namespace) -> None:
    header(f"memory: {args.jobs} queued jobs holding {args.photo_mb:g} MB photos")
    grain = 40.0 if args.photo_mb >= 5 else 20.0
    photo = photo_jpeg((4000, 3000), grain=grain)
    info = imaging.probe(photo, max_bytes=40 * 2**20, max_pixels=40_000_000)
    print(f"   each photo: {info.width}x{info.height} JPEG, {len(photo) / 2**20:.1f} MiB "
          f"compressed, {info.width * info.height * 3 / 2**20:.0f} MiB decoded as RGB; "
          f"{args.jobs} of them: {args.jobs * len(photo) / 2**20:.0f} MiB compressed")
    print("-- the service as configured (queued uploads wait in the database)")
    peak = await _pass(photo, args.jobs)
    print(f"   target: <= 400 MB -> {'met' if peak <= 400 else 'MISSED'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=500)
    parser.add_argument("--photo-mb", type=float, default=5.0,
                        help="5 gives 5 MB photos (12 MP, heavy grain); 3.7 a typical phone's")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
