"""Input preparation: a 12-megapixel JPEG to a provider's input size, the project vs plain Pillow.

The project's path is ``bot.imaging.prepare`` (JPEG DCT-domain downscaling while decoding,
then a reducing-gap Lanczos crop-resize, then PNG). The baseline is what most bots do: open,
convert to RGB, Lanczos resize of the full image, then the same PNG encoding. Both produce the
same size and format; the script also checks that their pixels agree closely.

    python benchmarks/bench_prepare.py [--rounds 7]
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from PIL import Image, ImageChops, ImageOps, ImageStat

from benchmarks.common import header, mean, median, photo_jpeg
from bot import imaging
from bot.models import SizeRules
from bot.providers.echo import EchoProvider
from bot.sizing import output_size


def plain_pillow(data: bytes, size: tuple[int, int]) -> bytes:
    """The common approach: full decode, full-resolution resize, then encode."""
    img = Image.open(io.BytesIO(data))
    img = ImageOps.exif_transpose(img).convert("RGB")
    src_w, src_h = img.size
    scale = max(size[0] / src_w, size[1] / src_h)
    crop_w, crop_h = size[0] / scale, size[1] / scale
    left, top = (src_w - crop_w) / 2, (src_h - crop_h) / 2
    img = img.resize(size, Image.Resampling.LANCZOS, box=(left, top, left + crop_w, top + crop_h))
    return imaging.encode(img, "PNG").data


def timed(fn: Callable[[], object], rounds: int) -> list[float]:
    """CPU seconds of each call: the work itself, not other processes on a shared machine."""
    times = []
    for _ in range(rounds):
        started = time.thread_time()
        fn()
        times.append(time.thread_time() - started)
    return times


def interleaved(a: Callable[[], object], b: Callable[[], object],
                rounds: int) -> tuple[list[float], list[float], list[float], list[float]]:
    """CPU and wall seconds of ``a`` and ``b``, alternating so that noise hits both alike."""
    cpu_a, cpu_b, wall_a, wall_b = [], [], [], []
    for _ in range(rounds):
        for fn, cpu, wall in ((a, cpu_a, wall_a), (b, cpu_b, wall_b)):
            started, started_cpu = time.perf_counter(), time.thread_time()
            fn()
            cpu.append(time.thread_time() - started_cpu)
            wall.append(time.perf_counter() - started)
    return cpu_a, cpu_b, wall_a, wall_b


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    header("input preparation: 12 MP JPEG to the provider's size")
    photo = photo_jpeg((4000, 3000))
    print(f"   input: 4000x3000 JPEG, {len(photo) / 1e6:.1f} MB; {args.rounds} rounds each, "
          "one thread, CPU time of the calling thread")
    sdxl = SizeRules(multiple=8, min_side=64, max_side=2048, preferred_area=1024 * 1024)
    for label, rules in (("SD 1.5 (512^2 area)", EchoProvider.size_rules),
                         ("SDXL (1024^2 area)", sdxl)):
        size = output_size((4000, 3000), rules)
        project_png = imaging.prepare(photo, size).data
        plain_png = plain_pillow(photo, size)
        a, b = Image.open(io.BytesIO(project_png)), Image.open(io.BytesIO(plain_png))
        assert a.size == b.size == size
        difference = mean(ImageStat.Stat(ImageChops.difference(a.convert("RGB"),
                                                               b.convert("RGB"))).mean)
        ours, theirs, ours_wall, theirs_wall = interleaved(
            lambda size=size: imaging.prepare(photo, size),
            lambda size=size: plain_pillow(photo, size), args.rounds)
        decode_ours = timed(lambda size=size: imaging.decode(photo, size), args.rounds)
        decode_theirs = timed(lambda: Image.open(io.BytesIO(photo)).convert("RGB"), args.rounds)
        resized = b.convert("RGB")
        encoding = timed(lambda resized=resized: imaging.encode(resized, "PNG"), args.rounds)
        print(f"-- {label}: output {size[0]}x{size[1]}")
        print(f"   project prepare   : median {median(ours) * 1000:7.1f} ms CPU  best "
              f"{min(ours) * 1000:7.1f} ms  (wall median {median(ours_wall) * 1000:.1f} ms)")
        print(f"   plain Pillow      : median {median(theirs) * 1000:7.1f} ms CPU  best "
              f"{min(theirs) * 1000:7.1f} ms  (wall median {median(theirs_wall) * 1000:.1f} ms)")
        print(f"   parts (medians)   : decoding {median(decode_ours) * 1000:.0f} ms (project) vs "
              f"{median(decode_theirs) * 1000:.0f} ms (plain); PNG encoding, the same in both, "
              f"{median(encoding) * 1000:.0f} ms")
        print(f"   mean pixel difference between the two outputs: {difference:.2f} of 255")
        wall_ratio = median(theirs_wall) / median(ours_wall)
        print(f"   ratio plain/project: {median(theirs) / median(ours):.1f}x by CPU medians, "
              f"{min(theirs) / min(ours):.1f}x by bests, {wall_ratio:.1f}x by wall medians  "
              "(target >= 3x)")


if __name__ == "__main__":
    main()
