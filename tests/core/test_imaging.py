from __future__ import annotations

import io
import math
import random

import pytest
from PIL import Image, ImageChops, ImageStat

from bot import imaging
from bot.errors import ImageError
from bot.models import SizeRules
from bot.sizing import megapixel_units, output_size, snap
from tests.texts import raises_message

LIMITS = {"max_bytes": 20 * 1024 * 1024, "max_pixels": 40_000_000}


def encoded(img: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def test_probe_reads_size_and_format() -> None:
    info = imaging.probe(encoded(Image.new("RGB", (300, 200)), "JPEG"), **LIMITS)
    assert (info.width, info.height, info.format, info.mime) == (300, 200, "JPEG", "image/jpeg")


def test_probe_applies_exif_rotation_to_the_size() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6
    info = imaging.probe(encoded(Image.new("RGB", (300, 200)), "JPEG", exif=exif), **LIMITS)
    assert (info.width, info.height) == (200, 300)


@pytest.mark.parametrize(("data", "msg_id"), [
    (b"", "error-image-empty"),
    (b"hello, this is text", "error-image-unreadable"),
    (b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"></svg>', "error-image-svg"),
])
def test_probe_refuses_non_images(data: bytes, msg_id: str) -> None:
    with raises_message(ImageError, msg_id):
        imaging.probe(data, **LIMITS)


def test_probe_refuses_truncated_and_oversized() -> None:
    jpeg = encoded(Image.effect_noise((400, 400), 50).convert("RGB"), "JPEG")
    with raises_message(ImageError, "error-image-incomplete"):
        imaging.probe(jpeg[: len(jpeg) // 2], **LIMITS)
    with raises_message(ImageError, "error-image-too-big"):
        imaging.probe(jpeg, max_bytes=100, max_pixels=10**9)
    with raises_message(ImageError, "error-image-too-many-pixels"):
        imaging.probe(jpeg, max_bytes=10**9, max_pixels=1000)


def test_prepare_flattens_alpha_and_resizes() -> None:
    rgba = Image.new("RGBA", (100, 50), (255, 0, 0, 0))
    out = imaging.prepare(encoded(rgba, "PNG"), (64, 32))
    img = Image.open(io.BytesIO(out.data))
    assert img.size == (64, 32) and img.mode == "RGB" and img.getpixel((5, 5)) == (255, 255, 255)


def test_prepare_sends_jpeg_where_asked_and_png_for_transparency() -> None:
    photo = encoded(Image.new("RGB", (100, 50), (10, 200, 30)), "JPEG")
    assert imaging.prepare(photo, (64, 32), "JPEG").mime == "image/jpeg"
    assert imaging.prepare(photo, (64, 32), "PNG").mime == "image/png"
    cutout = encoded(Image.new("RGBA", (100, 50), (255, 0, 0, 0)), "PNG")
    assert imaging.prepare(cutout, (64, 32), "JPEG").mime == "image/png"
    keyed = Image.new("P", (100, 50), 0)
    keyed.info["transparency"] = 0
    assert imaging.prepare(encoded(keyed, "PNG"), (64, 32), "JPEG").mime == "image/png"


def test_prepare_uses_the_first_frame_of_an_animation() -> None:
    frames = [Image.new("RGB", (40, 40), c) for c in ((255, 0, 0), (0, 0, 255))]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:])
    img = Image.open(io.BytesIO(imaging.prepare(buf.getvalue(), (40, 40)).data))
    red = img.convert("RGB").getpixel((10, 10))
    assert isinstance(red, tuple) and red[0] > 200 and red[2] < 50


def test_encode_fits_a_byte_budget() -> None:
    noisy = Image.effect_noise((800, 800), 100).convert("RGB")
    out = imaging.encode(noisy, "JPEG", max_bytes=40_000)
    assert len(out.data) <= 40_000 and out.mime == "image/jpeg"
    png = imaging.encode(noisy, "PNG", max_bytes=40_000)
    assert len(png.data) <= 40_000


async def test_off_loop_runs_in_a_worker_thread() -> None:
    import threading

    name = await imaging.off_loop(lambda: threading.current_thread().name)
    assert name.startswith("imaging")


def test_output_size_follows_the_input_ratio_and_rules() -> None:
    rules = SizeRules(multiple=64, min_side=320, max_side=1536, preferred_area=1024 * 1024)
    width, height = output_size((4000, 3000), rules)
    assert width % 64 == 0 and height % 64 == 0 and abs(width / height - 4 / 3) < 0.1
    assert output_size((100, 100), rules, size=(10000, 100)) == (1536, 320)
    assert output_size((100, 100), rules, aspect=(16, 9), max_side=512)[0] == 512
    sdxl = SizeRules(allowed_sizes=((1024, 1024), (1216, 832), (832, 1216)))
    assert output_size((3000, 2000), sdxl) == (1216, 832)


def test_snap_and_price_units() -> None:
    assert snap(500, 64, 320, 1536) == 512
    assert snap(10, 64, 320, 1536) == 320
    assert megapixel_units(1024, 1024) == 1 and megapixel_units(1025, 1024) == 2



def photo(size: tuple[int, int]) -> bytes:
    """Soft colour fields plus sensor-like grain: compresses and resamples like a photo."""
    small = (max(1, size[0] // 16), max(1, size[1] // 16))
    fields = Image.merge("RGB", (Image.effect_noise(small, 80),
                                 Image.linear_gradient("L").resize(small),
                                 Image.effect_noise(small, 60)))
    grain = Image.effect_noise(size, 20).convert("RGB")
    return encoded(Image.blend(fields.resize(size, Image.Resampling.BICUBIC), grain, 0.25),
                   "JPEG", quality=90)


@pytest.mark.parametrize(("source", "size"), [
    ((1280, 960), (592, 440)), ((1280, 960), (1184, 888)),
    ((4000, 3000), (592, 440)), ((4000, 3000), (1184, 888)), ((900, 1600), (440, 592)),
])
def test_prepared_input_matches_a_full_decode_resized_with_lanczos(
        source: tuple[int, int], size: tuple[int, int]) -> None:
    # The cheaper filter after the draft decode must not show: 40 dB PSNR is invisible.
    data = photo(source)
    prepared = Image.open(io.BytesIO(imaging.prepare(data, size, "PNG").data)).convert("RGB")
    reference = Image.open(io.BytesIO(data)).convert("RGB")
    scale = max(size[0] / reference.width, size[1] / reference.height)
    crop = (size[0] / scale, size[1] / scale)
    box = ((reference.width - crop[0]) / 2, (reference.height - crop[1]) / 2)
    reference = reference.resize(size, Image.Resampling.LANCZOS,
                                 box=(box[0], box[1], box[0] + crop[0], box[1] + crop[1]))
    squares = ImageStat.Stat(ImageChops.difference(prepared, reference)).rms
    mse = sum(rms ** 2 for rms in squares) / 3
    assert 10 * math.log10(255 ** 2 / mse) > 40


def _decodes_in_full(data: bytes) -> bool:
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
    except (OSError, ValueError, SyntaxError):
        return False
    return True


def test_a_results_check_refuses_exactly_the_jpegs_a_full_decode_refuses() -> None:
    """The check decodes a JPEG at 1/8 scale; cut short, bytes changed or markers written
    over the scan, each damaged file gets the full decode's verdict."""
    buf = io.BytesIO()
    Image.effect_noise((592, 440), 40).convert("RGB").save(buf, "JPEG", quality=92)
    photo = buf.getvalue()
    limits = imaging.ResultLimits(max_bytes=10_000_000, max_pixels=10_000_000)
    rnd = random.Random(7)
    refused = 0
    for index in range(300):
        data = bytearray(photo)
        if index % 3 == 0:
            data = data[:rnd.randrange(200, len(data))]
        elif index % 3 == 1:
            for _ in range(rnd.randrange(1, 20)):
                data[rnd.randrange(600, len(data))] = rnd.randrange(256)
        else:
            at = rnd.randrange(600, len(data) - 100)
            data[at:at + rnd.randrange(1, 64)] = b"\xff" * rnd.randrange(1, 64)
        try:
            imaging.check_result(bytes(data), limits)
            accepted = True
        except ImageError:
            accepted, refused = False, refused + 1
        assert accepted == _decodes_in_full(bytes(data)), index
    assert 100 < refused < 300  # both verdicts were tried
