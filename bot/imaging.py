"""Safe decoding, resizing and encoding of user images; every function here runs off the loop.

``probe`` checks an upload before anything is charged (format, bytes, pixels, a cheap trial
decode); ``prepare`` turns the stored compressed bytes into the provider's input when the job
starts; ``fit_for_delivery`` makes a result fit a platform's limits. The async wrappers run
them on a dedicated thread pool (Pillow releases the GIL while it decodes and resizes).
"""

from __future__ import annotations

import asyncio
import contextvars
import io
import os
import struct
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import ParamSpec, TypeVar

from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from bot.errors import ImageError
from bot.i18n import Msg
from bot.models import ImageData, ResultLimits

P = ParamSpec("P")
T = TypeVar("T")

ALLOWED_FORMATS = {"JPEG": "image/jpeg", "MPO": "image/jpeg", "PNG": "image/png",
                   "WEBP": "image/webp", "GIF": "image/gif", "BMP": "image/bmp",
                   "TIFF": "image/tiff"}
# The formats a user may send, as a phrase rendered in the reader's language.
FORMATS = Msg("image-formats")
# Extensions taken for an image when a file's type does not say (platforms may send none).
IMAGE_EXTENSIONS = frozenset({"jpg", "jpeg", "jfif", "png", "webp", "gif", "bmp", "tif", "tiff",
                              "heic", "heif", "avif"})
ROTATED = {5, 6, 7, 8}  # EXIF orientations that swap width and height
ImageFile.LOAD_TRUNCATED_IMAGES = False
# What Pillow's parsers raise on malformed files besides OSError (found by fuzzing: damaged
# GIF and TIFF frame tables raise IndexError, TypeError and struct.error).
BROKEN = (OSError, ValueError, SyntaxError, EOFError, IndexError, KeyError, TypeError,
          struct.error)

_pool = ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2),
                           thread_name_prefix="imaging")


async def off_loop(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run Pillow work on the imaging pool so the event loop stays free, in the caller's
    context (its locale renders any message made there), as ``asyncio.to_thread`` does."""
    context = contextvars.copy_context()
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_pool, lambda: context.run(fn, *args, **kwargs))


@dataclass(frozen=True, slots=True)
class ImageInfo:
    """What ``probe`` learned: size as displayed (EXIF orientation applied)."""

    width: int
    height: int
    format: str
    mime: str
    frames: int
    nbytes: int


def _mb(n: int) -> int:
    return round(n / (1024 * 1024))


def _sniff(data: bytes) -> None:
    head = data[:512].lstrip()
    if head[:5].lower() in (b"<svg ", b"<?xml") or b"<svg" in head[:256].lower():
        raise ImageError(msg=Msg("error-image-svg", {"formats": FORMATS}))
    if head[:4] == b"%PDF":
        raise ImageError(msg=Msg("error-image-pdf", {"formats": FORMATS}))
    if head[4:12] in (b"ftypheic", b"ftypheix", b"ftypmif1", b"ftypavif"):
        raise ImageError(msg=Msg("error-image-heic", {"formats": FORMATS}))


def _open(data: bytes) -> Image.Image:
    try:
        return Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:
        raise ImageError(msg=Msg("error-image-bomb")) from exc
    except UnidentifiedImageError as exc:
        raise ImageError(msg=Msg("error-image-unreadable", {"formats": FORMATS})) from exc
    except BROKEN as exc:
        raise ImageError(msg=Msg("error-image-damaged")) from exc


def probe(data: bytes, *, max_bytes: int, max_pixels: int, trial: bool = True) -> ImageInfo:
    """Check an upload without a full decode; raises ``ImageError`` with a clear sentence.

    ``trial=False`` leaves out a JPEG's trial decode, for a caller that decodes the image
    right after (``prepare``) and gets the same sentence from it: the trial costs about 2 ms
    of a 1280x960 photo, most of what decoding it at the provider's scale costs.
    """
    if not data:
        raise ImageError(msg=Msg("error-image-empty"))
    if len(data) > max_bytes:
        raise ImageError(msg=Msg("error-image-too-big",
                                 {"size": _mb(len(data)), "limit": _mb(max_bytes)}))
    _sniff(data)
    img = _open(data)
    fmt = img.format or ""
    if fmt not in ALLOWED_FORMATS:
        raise ImageError(msg=Msg("error-image-format", {"format": fmt, "formats": FORMATS})
                         if fmt else Msg("error-image-unreadable", {"formats": FORMATS}))
    width, height = img.size
    if width < 1 or height < 1:
        raise ImageError(msg=Msg("error-image-no-pixels"))
    if width * height > max_pixels:
        raise ImageError(msg=Msg("error-image-too-many-pixels", {
            "width": str(width), "height": str(height), "limit": round(max_pixels / 1e6)}))
    if max(width, height) / min(width, height) > 20:
        raise ImageError(msg=Msg("error-image-unequal",
                                 {"width": str(width), "height": str(height)}))
    # Decode first: reading a PNG's EXIF loads the pixels, and a load that failed there
    # would leave nothing for the trial decode to catch.
    if trial or fmt not in ("JPEG", "MPO"):
        _trial_decode(img, fmt, "error-image-incomplete")
    if _orientation(img) in ROTATED:
        width, height = height, width
    try:
        frames = int(getattr(img, "n_frames", 1))
    except BROKEN as exc:
        raise ImageError(msg=Msg("error-image-incomplete")) from exc
    return ImageInfo(width, height, fmt, ALLOWED_FORMATS[fmt], frames, len(data))


def _orientation(img: Image.Image) -> int:
    """The EXIF orientation; 1 (upright) when the EXIF block is unreadable."""
    try:
        return int(img.getexif().get(0x0112, 1))
    except BROKEN:
        return 1


def _trial_decode(img: Image.Image, fmt: str, refusal: str) -> None:
    """Decode cheaply to catch truncated or corrupt files before anything is charged; raises
    ``ImageError`` with the message ``refusal``.

    A JPEG decodes at 1/8 scale: that still reads every coefficient of the file, so it gives
    a full decode's verdict (the same on 3,000 randomly damaged photos; the imaging tests try
    300) at 60% of its cost.
    """
    try:
        if fmt in ("JPEG", "MPO"):
            img.draft("RGB", (max(1, img.size[0] // 8), max(1, img.size[1] // 8)))
        img.seek(0)
        img.load()
    except (*BROKEN, Image.DecompressionBombError) as exc:
        raise ImageError(msg=Msg(refusal)) from exc


def _to_rgb(img: Image.Image) -> Image.Image:
    """Any mode to RGB: alpha flattened on white, 16-bit scaled down, CMYK converted."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        img = img.point(lambda value: value * (1 / 256)).convert("L")
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return img if img.mode == "RGB" else img.convert("RGB")


def decode(data: bytes, target: tuple[int, int] | None = None) -> Image.Image:
    """Decode the first frame as upright RGB; with ``target`` JPEG decodes at a reduced scale."""
    return _decoded(_open(data), target)


def _decoded(img: Image.Image, target: tuple[int, int] | None) -> Image.Image:
    try:
        if target and img.format in ("JPEG", "MPO"):
            want = (target[1], target[0]) if _orientation(img) in ROTATED else target
            img.draft("RGB", want)
        img.seek(0)
        img.load()
        ImageOps.exif_transpose(img, in_place=True)  # else an upright image is copied
        return _to_rgb(img)
    except BROKEN as exc:
        raise ImageError(msg=Msg("error-image-incomplete")) from exc


def fit_crop(img: Image.Image, size: tuple[int, int]) -> Image.Image:
    """Scale to cover ``size`` and crop the centre (what img2img UIs call crop-and-resize)."""
    if img.size == size:
        return img
    src_w, src_h = img.size
    scale = max(size[0] / src_w, size[1] / src_h)
    crop_w, crop_h = size[0] / scale, size[1] / scale
    left, top = (src_w - crop_w) / 2, (src_h - crop_h) / 2
    return img.resize(size, resample_for(1 / scale),
                      box=(left, top, left + crop_w, top + crop_h), reducing_gap=3.0)


def resample_for(factor: float) -> Image.Resampling:
    """The cheapest filter that keeps the picture at a remaining reduction of ``factor``.

    After a draft decode the factor is under 2. Pillow widens every filter's support by the
    factor, so none of them aliases; they differ in sharpness. Measured against a full decode
    resized with LANCZOS (benchmarks/README.md): below 1.25 BILINEAR is as close as LANCZOS
    (45 dB on a photo) at 60% of the cost; up to 2 BICUBIC stays above 46 dB where
    BILINEAR visibly softens (37 dB); beyond 2 LANCZOS.
    """
    if factor <= 1.25:
        return Image.Resampling.BILINEAR
    if factor <= 2.0:
        return Image.Resampling.BICUBIC
    return Image.Resampling.LANCZOS


def encode(img: Image.Image, fmt: str = "PNG", *, max_bytes: int | None = None) -> ImageData:
    """Encode in ``fmt`` (PNG, JPEG or WEBP), stepping quality/size down to fit ``max_bytes``."""
    fmt = fmt.upper()
    mime = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}[fmt]
    buf = io.BytesIO()
    if fmt == "PNG":
        # Run-length strategy: on resampled photos 1.3-1.6x faster than the default deflate
        # at level 1, and the files come out 6-11% smaller (benchmarks/README.md).
        # No ICC profile: backends ignore it, and a large one makes decoders refuse the file.
        img.save(buf, "PNG", compress_level=1, compress_type=zlib.Z_RLE, icc_profile=None)
        if max_bytes is None or buf.tell() <= max_bytes:
            return ImageData(buf.getvalue(), mime)
        return encode(img, "JPEG", max_bytes=max_bytes)
    for quality in (92, 85, 75, 60, 45):
        buf = io.BytesIO()
        img.save(buf, fmt, quality=quality)
        if max_bytes is None or buf.tell() <= max_bytes:
            return ImageData(buf.getvalue(), mime)
    smaller = img.resize((max(1, img.width * 3 // 4), max(1, img.height * 3 // 4)),
                         Image.Resampling.LANCZOS)
    return encode(smaller, fmt, max_bytes=max_bytes)


def prepare(data: bytes, size: tuple[int, int], fmt: str = "PNG",
            max_bytes: int | None = None) -> ImageData:
    """The stored upload as the provider's input: upright RGB at ``size`` in ``fmt``.

    An upload with transparency goes as PNG whatever ``fmt`` says: its edges against the
    white it is flattened on would blur in a lossy format.
    """
    img = _open(data)
    if fmt.upper() != "PNG" and _transparent(img):
        fmt = "PNG"
    return encode(fit_crop(_decoded(img, size), size), fmt, max_bytes=max_bytes)


def _transparent(img: Image.Image) -> bool:
    """Whether the image has an alpha channel or a transparent colour (header only)."""
    return img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in img.info


def fit_for_delivery(image: ImageData, *, max_bytes: int,
                     max_side_sum: int | None = None) -> ImageData:
    """A result that fits a platform's limits: unchanged when it does, else re-encoded/shrunk."""
    img: Image.Image = Image.open(io.BytesIO(image.data))
    width, height = img.size
    sum_ok = max_side_sum is None or width + height <= max_side_sum
    if len(image.data) <= max_bytes and sum_ok:
        return image
    img = _to_rgb(img)
    if not sum_ok and max_side_sum is not None:
        scale = max_side_sum / (width + height)
        img = img.resize((max(1, int(width * scale)), max(1, int(height * scale))),
                         Image.Resampling.LANCZOS)
    return encode(img, "PNG" if image.mime == "image/png" else "JPEG", max_bytes=max_bytes)


def named_like_image(name: str, mime: str | None) -> bool:
    """Whether a file's type, else its name's extension, says it is an image."""
    extension = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    return (mime or "").startswith("image/") or extension in IMAGE_EXTENSIONS


def image_size(data: bytes) -> tuple[int, int]:
    """Width and height from the header only."""
    with Image.open(io.BytesIO(data)) as img:
        return img.size


def check_result(data: bytes, limits: ResultLimits) -> tuple[int, int]:
    """A finished image, decoded for real within the byte and pixel caps; its width and height.

    Raises ``ImageError`` carrying one whole sentence per reason (``error-result-damaged``,
    ...), so translators word each reason in context rather than a phrase put into another
    sentence; the provider re-raises it as its own failure with the same message.
    """
    if len(data) > limits.max_bytes:
        raise ImageError(msg=Msg("error-result-too-big",
                                 {"size": _mb(len(data)), "limit": _mb(limits.max_bytes)}))
    try:
        img = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:
        raise ImageError(msg=Msg("error-result-bomb")) from exc
    except (*BROKEN, UnidentifiedImageError) as exc:
        raise ImageError(msg=Msg("error-result-damaged")) from exc
    with img:
        width, height = img.size
        if width * height > limits.max_pixels:
            raise ImageError(msg=Msg("error-result-too-many-pixels", {
                "width": str(width), "height": str(height),
                "limit": round(limits.max_pixels / 1e6)}))
        if width < 1 or height < 1:
            raise ImageError(msg=Msg("error-result-no-pixels"))
        _trial_decode(img, img.format or "", "error-result-incomplete")
    return width, height
