"""Images per second of the diffusers backend: N jobs one after another vs the same N batched.

By default it builds the tiny random pipeline from the tests and runs on the CPU; on a machine
with a GPU pass a real model, e.g. ``--model stabilityai/sd-turbo --device cuda --size 512``.
It prints figures; it asserts nothing.

    python benchmarks/bench_diffusers.py [--jobs 8] [--max-batch 4] [--steps 8] [--size 128]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.config import build_config
from bot.models import ProviderJob
from bot.providers import build_providers
from bot.providers.base import Reporter
from bot.providers.diffusers_local import DiffusersProvider
from bot.providers.http import make_client
from tests.fakes.server import png_bytes
from tests.providers.helpers import make_job


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="model id or folder (default: the tiny test model)")
    parser.add_argument("--device", default=None, help="auto, cpu, cuda, mps (default: cpu for "
                        "the tiny model, auto otherwise)")
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--jobs", type=int, default=8)
    parser.add_argument("--max-batch", type=int, default=4)
    parser.add_argument("--window-ms", type=float, default=30.0)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--strength", type=float, default=0.5)
    parser.add_argument("--cfg", type=float, default=3.0)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--local-files-only", action="store_true")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    return parser.parse_args()


async def _provider(args: argparse.Namespace, model: str, device: str,
                    http: httpx.AsyncClient) -> DiffusersProvider:
    table = {"type": "diffusers", "model": model, "device": device, "dtype": args.dtype,
             "local_files_only": args.local_files_only, "max_batch": args.max_batch,
             "batch_window_ms": args.window_ms, "max_concurrency": args.jobs, "timeout": 3600}
    config = build_config({"defaults": {"provider": "bench"}, "providers": {"bench": table}},
                          environ={})
    provider = build_providers(config.provider_settings(), http)["bench"]
    assert isinstance(provider, DiffusersProvider)
    return provider


async def _run(args: argparse.Namespace, model: str, device: str) -> None:
    image = png_bytes((args.size, args.size))

    def job(index: int) -> ProviderJob:
        return make_job(job_id=f"bench-{index}", image=image, timeout=3600, seed=index,
                        prompt=f"an oil painting of a cat, variant {index}", steps=args.steps,
                        strength=args.strength, cfg=args.cfg, width=args.size, height=args.size)

    async with make_client() as http:
        provider = await _provider(args, model, device, http)
        started = time.perf_counter()
        await provider.generate(job(-1), Reporter())
        print(f"model {model} on {provider.device_name}: loaded and warmed up in "
              f"{time.perf_counter() - started:.2f} s")
        print(f"{args.jobs} jobs, {args.size}x{args.size}, {args.steps} steps, strength "
              f"{args.strength}, cfg {args.cfg}, max_batch {args.max_batch}")

        calls = provider.stats.calls
        started = time.perf_counter()
        for index in range(args.jobs):
            await provider.generate(job(index), Reporter())
        sequential = time.perf_counter() - started
        sequential_calls = provider.stats.calls - calls

        calls = provider.stats.calls
        started = time.perf_counter()
        await asyncio.gather(*(provider.generate(job(index), Reporter())
                               for index in range(args.jobs)))
        batched = time.perf_counter() - started
        batched_calls = provider.stats.calls - calls
        await provider.close()

    print(f"sequential: {args.jobs / sequential:8.2f} images/s  ({sequential:.2f} s, "
          f"{sequential_calls} pipeline calls)")
    print(f"batched:    {args.jobs / batched:8.2f} images/s  ({batched:.2f} s, "
          f"{batched_calls} pipeline calls)")
    print(f"ratio batched/sequential: {sequential / batched:.2f}x")


def main() -> None:
    args = _arguments()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    if args.model:
        asyncio.run(_run(args, args.model, args.device or "auto"))
        return
    from tests.providers.tiny_pipeline import build_tiny_pipeline

    with tempfile.TemporaryDirectory() as folder:
        model = build_tiny_pipeline(Path(folder))
        args.local_files_only = True
        asyncio.run(_run(args, str(model), args.device or "cpu"))


if __name__ == "__main__":
    main()
