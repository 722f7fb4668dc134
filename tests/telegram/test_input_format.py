"""The backend gets the photo in the format it declares (``SizeRules.input_format``)."""

from __future__ import annotations

import base64

from tests.telegram.conftest import Harness


async def test_the_webui_is_sent_a_jpeg(tg: Harness) -> None:
    update = tg.send(tg.fake.build.photo(caption="/img2img a cat"))
    await tg.result(update)
    sent = base64.b64decode(tg.a1111.img2img_bodies[-1]["init_images"][0])
    assert sent[:3] == b"\xff\xd8\xff"  # JPEG, not PNG: a fraction of the encoding time
