"""Hostile and unusual uploads: a clear refusal before any charge, or a correct result.

Every sample of ``corpus.py`` goes through ``GenerationService.submit`` with the echo backend
(which hands back the prepared input): a refusal must be an ``ImageError`` with its message
and must leave the user's credits and the jobs table untouched; anything accepted must finish
with the right picture. Then a seeded mutation fuzzer checks the same two promises on
thousands of damaged JPEG, PNG, GIF, WebP, BMP and TIFF files without the service around.
"""

from __future__ import annotations

import io
import random
import time
import warnings
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from PIL import Image

from bot import imaging
from bot.app import App, running_app
from bot.config import build_config
from bot.errors import ImageError
from bot.events import Done
from bot.jobs import GenerationRequest
from bot.models import ChatRef, UserRef
from tests.reliability.corpus import Sample, samples

CORPUS = samples()
INITIAL = 10


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[App]:
    config = build_config({
        "storage": {"url": f"sqlite:///{tmp_path / 'bot.db'}"},
        "credits": {"initial": INITIAL, "daily_free": 0},
        "defaults": {"provider": "echo"},
        "providers": {"echo": {"type": "echo", "cost": 1, "max_concurrency": 4}},
    }, environ={})
    async with running_app(config) as built:
        yield built


def test_the_corpus_covers_what_users_send() -> None:
    names = {sample.name for sample in CORPUS}
    for needed in ("truncated_jpeg", "truncated_png", "zero_bytes", "png_bomb_30000x30000",
                   "tall_1x100000", "wide_100000x1", "cmyk_jpeg", "png_16_bit",
                   "palette_with_transparency", "animated_gif", "animated_webp", "exif_rotated",
                   "text_named_jpg", "svg", "huge_icc_profile"):
        assert needed in names
    assert len(names) == len(CORPUS)


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data")
@pytest.mark.parametrize("sample", CORPUS, ids=[s.name for s in CORPUS])
async def test_each_upload_is_refused_clearly_or_works(app: App, sample: Sample) -> None:
    user = UserRef("telegram", "42")
    request = GenerationRequest(user=user, chat=ChatRef("telegram", "42", private=True),
                                image=sample.data, prompt="a watercolor painting")
    started = time.monotonic()
    if sample.refusal is not None:
        with pytest.raises(ImageError) as caught:
            await app.service.submit(request)
        message = caught.value.user_message
        assert sample.refusal in message and message.endswith("."), message
        assert time.monotonic() - started < 5  # a bomb is refused, never decoded
        assert await app.storage.balance(user.key) in (None, INITIAL)  # nothing charged
        assert (await app.storage.stats())["jobs"] == {}  # no job row was written
        return
    handle = await app.service.submit(request)
    final = await handle.wait()
    assert isinstance(final, Done), final
    assert final.balance == INITIAL - 1
    result = Image.open(io.BytesIO(final.images[0].data))
    assert result.size == (handle.params.width, handle.params.height)
    assert sample.check is not None
    sample.check(result)
    assert await app.storage.drift() == []


def _mutate(data: bytes, rng: random.Random) -> bytes:
    out = bytearray(data)
    operation = rng.choice(("flip", "cut", "duplicate", "zero"))
    if operation == "cut":
        return bytes(out[: rng.randrange(1, len(out))])
    for _ in range(rng.randint(1, 8)):
        at = rng.randrange(len(out))
        span = rng.randint(1, 64)
        if operation == "flip":
            out[at] = rng.randrange(256)
        elif operation == "zero":
            out[at: at + span] = bytes(len(out[at: at + span]))
        else:
            out[at:at] = out[at: at + span]
    return bytes(out)


def _seeds() -> dict[str, bytes]:
    noise = Image.effect_noise((96, 72), 60).convert("RGB")
    found = {s.name: s.data for s in CORPUS if s.name in (
        "animated_gif", "animated_webp", "png_16_bit", "exif_rotated", "cmyk_jpeg",
        "tiff_two_pages", "palette_with_transparency")}
    for fmt in ("JPEG", "PNG", "BMP", "WEBP"):
        buf = io.BytesIO()
        noise.save(buf, fmt)
        found[fmt.lower()] = buf.getvalue()
    return found


def test_damaged_files_never_crash_and_what_probe_accepts_prepares() -> None:
    rng = random.Random(20261122)
    seeds = _seeds()
    refused = worked = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Pillow warns about corrupt EXIF blocks
        for _ in range(1500):
            name = rng.choice(sorted(seeds))
            data = _mutate(seeds[name], rng)
            try:
                imaging.probe(data, max_bytes=20 * 2**20, max_pixels=40_000_000)
            except ImageError:
                refused += 1
                continue
            # Accepted at submit means charged: preparing it must not fail afterwards.
            result = imaging.prepare(data, (64, 64))
            assert result.data[:4] == b"\x89PNG", name
            worked += 1
    assert refused > 300 and worked > 300, (refused, worked)
