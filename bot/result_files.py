"""A result's images as a platform takes them: inline (a photo) where they fit its photo rules,
else as files, each shrunk only when even a file would be too big."""

from __future__ import annotations

from dataclasses import dataclass

from bot.events import Done
from bot.imaging import fit_for_delivery, image_size, off_loop
from bot.models import ImageData
from bot.presenter import result_filename


@dataclass(frozen=True, slots=True)
class MediaLimits:
    """A platform's limits: on any file, and on images it shows inline (None: no inline kind)."""

    file_bytes: int
    photo_bytes: int | None = None
    photo_side_sum: int | None = None
    photo_ratio: float | None = None  # longer side over shorter side


@dataclass(frozen=True, slots=True)
class ResultFile:
    image: ImageData
    filename: str
    as_photo: bool


def fits_photo(image: ImageData, limits: MediaLimits) -> bool:
    """Whether the platform takes the image inline (bytes, side sum and ratio within limits)."""
    if limits.photo_bytes is None or len(image.data) > limits.photo_bytes:
        return False
    try:
        width, height = image.size or image_size(image.data)
    except (OSError, ValueError):  # the platform would refuse it inline too
        return False
    return ((limits.photo_side_sum is None or width + height <= limits.photo_side_sum)
            and (limits.photo_ratio is None
                 or max(width, height) <= limits.photo_ratio * min(width, height)))


def _as_is(image: ImageData, limits: MediaLimits) -> bool | None:
    """Inline (True) or a file (False) as it is; None when too big even for a file."""
    if fits_photo(image, limits):
        return True
    return False if len(image.data) <= limits.file_bytes else None


def _as_sent(image: ImageData, limits: MediaLimits) -> tuple[ImageData, bool]:
    """As it is where it fits; too big for a file, shrunk (inline if the platform has it)."""
    inline = _as_is(image, limits)
    if inline is not None:
        return image, inline
    small = fit_for_delivery(image, max_bytes=limits.photo_bytes or limits.file_bytes,
                             max_side_sum=limits.photo_side_sum)
    return small, limits.photo_bytes is not None


async def result_files(done: Done, limits: MediaLimits, fallback: str) -> list[ResultFile]:
    """Each image of ``done`` as it goes out, named by its seed (``fallback`` when none)."""
    out = []
    for index, image in enumerate(done.images):
        # With its size known, an image that needs no shrinking is placed without a thread.
        inline = _as_is(image, limits) if image.size is not None else None
        sent, as_photo = (image, inline) if inline is not None else \
            await off_loop(_as_sent, image, limits)
        out.append(ResultFile(sent, result_filename(done, index, sent.extension, fallback),
                              as_photo))
    return out
