"""A corpus of hostile and unusual uploads, generated in memory, each with what must happen.

A sample is either refused before anything is charged (``refusal`` is a fragment of the
``ImageError`` message the user sees) or works (``check`` looks at the prepared result).
"""

from __future__ import annotations

import io
import random
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass

from PIL import Image

from tests.texts import en

Check = Callable[[Image.Image], None]


@dataclass(frozen=True)
class Sample:
    name: str
    data: bytes
    refusal: str | None = None
    check: Check | None = None


def _save(img: Image.Image, fmt: str, **options: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **options)
    return buf.getvalue()


def _noise(size: tuple[int, int]) -> Image.Image:
    return Image.effect_noise(size, 60).convert("RGB")


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims ``width`` x ``height`` 1-bit pixels (a bomb's shape)."""
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    rows = zlib.compress(b"\x00" * (1 + (width + 7) // 8) * 4)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", rows)
            + _chunk(b"IEND", b""))


def png_complete_bomb(width: int, height: int) -> bytes:
    """A *valid* PNG of ``width`` x ``height`` 1-bit black pixels: every row is there."""
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    packer = zlib.compressobj(9)
    row = b"\x00" * (1 + (width + 7) // 8)
    rows = b"".join(packer.compress(row * 1000) for _ in range(height // 1000))
    rows += packer.compress(row * (height % 1000)) + packer.flush()
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", rows)
            + _chunk(b"IEND", b""))


def png_text_bomb() -> bytes:
    """A small PNG with a zTXt chunk that inflates to 64 MB."""
    base = _save(Image.new("RGB", (64, 64), (10, 20, 30)), "PNG")
    text = b"Comment\x00\x00" + zlib.compress(b"A" * (64 * 1024 * 1024), 9)
    return base[:33] + _chunk(b"zTXt", text) + base[33:]


def jpeg_claiming(width: int, height: int) -> bytes:
    """A small JPEG whose frame header is patched to claim ``width`` x ``height``."""
    data = bytearray(_save(Image.new("RGB", (16, 16), (200, 0, 0)), "JPEG"))
    sof = data.index(b"\xff\xc0")
    data[sof + 5: sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def gif_screen_bomb() -> bytes:
    """A 1x1 GIF frame on a logical screen of 60000 x 60000."""
    data = bytearray(_save(Image.new("P", (1, 1)), "GIF"))
    data[6:10] = struct.pack("<HH", 60000, 60000)
    return bytes(data)


def _animated(fmt: str) -> bytes:
    frames = [Image.new("RGB", (120, 90), colour)
              for colour in ((220, 20, 20), (20, 220, 20), (20, 20, 220))]
    options: dict[str, object] = {"save_all": True, "append_images": frames[1:], "duration": 80,
                                  "loop": 0}
    if fmt == "WEBP":
        options["lossless"] = True
    return _save(frames[0], fmt, **options)


def _exif_rotated() -> bytes:
    img = Image.new("RGB", (640, 480), (30, 60, 90))
    exif = img.getexif()
    exif[0x0112] = 6  # stored landscape, displayed portrait
    return _save(img, "JPEG", exif=exif.tobytes())


def _corrupt_exif() -> bytes:
    data = _save(_noise((320, 240)), "JPEG")
    segment = b"Exif\x00\x00II*\x00\xff\xff\xff\x7f" + b"\x00" * 20
    return data[:2] + b"\xff\xe1" + struct.pack(">H", len(segment) + 2) + segment + data[2:]


def _palette_with_transparency() -> bytes:
    img = Image.new("P", (100, 100), 0)
    img.putpalette([0, 0, 0, 230, 30, 30] + [0] * 762)
    img.paste(1, (50, 0, 100, 100))  # right half red, left half index 0
    return _save(img, "PNG", transparency=0)


def _la_png() -> bytes:
    img = Image.new("LA", (80, 60), (0, 0))
    img.paste((40, 255), (40, 0, 80, 60))
    return _save(img, "PNG")


# -- checks on the prepared result (what the echo backend hands back) ---------------------


def _pixel(img: Image.Image, fx: float, fy: float) -> tuple[int, ...]:
    value = img.convert("RGB").getpixel((int(img.width * fx), int(img.height * fy)))
    assert isinstance(value, tuple)
    return value


def _near(actual: tuple[int, ...], expected: tuple[int, ...], tolerance: int = 12) -> bool:
    return all(abs(a - e) <= tolerance for a, e in zip(actual, expected, strict=True))


def colour(expected: tuple[int, int, int], tolerance: int = 12) -> Check:
    def check(img: Image.Image) -> None:
        assert _near(_pixel(img, 0.5, 0.5), expected, tolerance), _pixel(img, 0.5, 0.5)
    return check


def portrait(img: Image.Image) -> None:
    assert img.height > img.width, img.size


def white_left_red_right(img: Image.Image) -> None:
    assert _near(_pixel(img, 0.1, 0.5), (255, 255, 255)), _pixel(img, 0.1, 0.5)
    assert _near(_pixel(img, 0.9, 0.5), (230, 30, 30)), _pixel(img, 0.9, 0.5)


def white_left_grey_right(img: Image.Image) -> None:
    assert _near(_pixel(img, 0.1, 0.5), (255, 255, 255)), _pixel(img, 0.1, 0.5)
    assert _near(_pixel(img, 0.9, 0.5), (40, 40, 40)), _pixel(img, 0.9, 0.5)


def rgb(img: Image.Image) -> None:
    assert img.mode == "RGB" and min(img.size) >= 64, (img.mode, img.size)


DAMAGED = "damaged"
FORMATS = en("image-formats")
NOT_IMAGE = en("error-image-unreadable", formats=FORMATS)
TOO_MANY = en("error-image-bomb")


def samples() -> list[Sample]:
    """The whole corpus (about 4 MB in all; built in well under a second)."""
    jpeg = _save(_noise((640, 480)), "JPEG")
    png = _save(_noise((320, 240)), "PNG")
    rng = random.Random(3)
    return [
        Sample("zero_bytes", b"", en("error-image-empty")),
        Sample("truncated_jpeg", jpeg[: len(jpeg) * 6 // 10], DAMAGED),
        Sample("jpeg_without_end_marker", jpeg[:-2], DAMAGED),
        Sample("truncated_png", png[: len(png) * 6 // 10], DAMAGED),
        Sample("png_bomb_30000x30000", png_claiming(30000, 30000), TOO_MANY),
        Sample("png_over_the_limit_8000x6000", png_claiming(8000, 6000),
               en("error-image-too-many-pixels", width=8000, height=6000, limit=40)),
        Sample("jpeg_bomb_65000x65000", jpeg_claiming(65000, 65000), TOO_MANY),
        Sample("gif_screen_bomb", gif_screen_bomb(), TOO_MANY),
        Sample("png_text_bomb", png_text_bomb(), DAMAGED),
        Sample("tall_1x100000", _save(Image.new("L", (1, 100000), 128), "PNG"),
               en("error-image-unequal", width=1, height=100000)),
        Sample("wide_100000x1", _save(Image.new("L", (100000, 1), 128), "PNG"),
               en("error-image-unequal", width=100000, height=1)),
        Sample("text_named_jpg", b"Hello! This is a text file called photo.jpg\n", NOT_IMAGE),
        Sample("svg", b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" '
                      b'width="100" height="100"><rect width="100" height="100"/></svg>',
               en("error-image-svg", formats=FORMATS)),
        Sample("pdf", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n",
               en("error-image-pdf", formats=FORMATS)),
        Sample("heic", b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 64,
               en("error-image-heic", formats=FORMATS)),
        Sample("ico", _save(Image.new("RGB", (32, 32)), "ICO"),
               en("error-image-format", format="ICO", formats=FORMATS)),
        Sample("cmyk_jpeg", _save(Image.new("CMYK", (200, 150), (0, 255, 255, 0)), "JPEG"),
               check=colour((255, 0, 0), 40)),
        Sample("png_16_bit", _save(Image.new("I;16", (160, 120), 0x8000), "PNG"),
               check=colour((128, 128, 128), 3)),
        Sample("palette_with_transparency", _palette_with_transparency(),
               check=white_left_red_right),
        Sample("grey_with_alpha", _la_png(), check=white_left_grey_right),
        Sample("animated_gif", _animated("GIF"), check=colour((220, 20, 20), 30)),
        Sample("animated_webp", _animated("WEBP"), check=colour((220, 20, 20), 12)),
        Sample("exif_rotated", _exif_rotated(), check=portrait),
        Sample("corrupt_exif", _corrupt_exif(), check=rgb),
        Sample("huge_icc_profile", _save(Image.new("RGB", (120, 90), (20, 140, 60)), "JPEG",
                                         icc_profile=rng.randbytes(2_000_000)),
               check=colour((20, 140, 60))),
        Sample("one_pixel", _save(Image.new("RGB", (1, 1), (9, 99, 199)), "PNG"),
               check=colour((9, 99, 199), 3)),
        Sample("grey_jpeg", _save(Image.new("L", (120, 90), 200), "JPEG"),
               check=colour((200, 200, 200), 3)),
        Sample("bmp", _save(Image.new("RGB", (50, 40), (1, 2, 250)), "BMP"),
               check=colour((1, 2, 250), 3)),
        Sample("tiff_two_pages", _save(Image.new("RGB", (60, 40), (250, 250, 0)), "TIFF",
                                       save_all=True,
                                       append_images=[Image.new("RGB", (60, 40))]),
               check=colour((250, 250, 0), 3)),
    ]
