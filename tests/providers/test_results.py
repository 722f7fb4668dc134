"""The image reading and bounds checks every backend shares."""

from __future__ import annotations

import base64
import io
from typing import Any

import pytest
from PIL import Image

from bot.errors import InvalidProviderRequest, JobFailed
from bot.models import ImageData, SizeRules
from bot.providers.results import check_rules, decode_image
from tests.fakes.server import jpeg_bytes, png_bytes
from tests.providers.helpers import make_job, one_sentence
from tests.texts import raises_message


def _webp() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buf, "WEBP")
    return buf.getvalue()


def test_raw_bytes_base64_and_data_urls_are_read_with_their_type() -> None:
    png, jpeg, webp = png_bytes(), jpeg_bytes(), _webp()
    assert decode_image(png) == ImageData(png, "image/png")
    assert decode_image(base64.b64encode(jpeg).decode()) == ImageData(jpeg, "image/jpeg")
    assert decode_image(b"data:image/webp;base64," + base64.b64encode(webp)) == ImageData(
        webp, "image/webp")


@pytest.mark.parametrize("answer", [b"not an image", "not base64!", "",
                                    base64.b64encode(b"GIF89a, not one we deliver").decode()])
def test_anything_else_is_a_failed_job(answer: bytes | str) -> None:
    with pytest.raises(JobFailed) as caught:
        decode_image(answer)
    assert caught.value.accepted and one_sentence(caught.value.user_message)


def test_a_json_value_of_another_kind_is_malformed() -> None:
    answer: Any = None
    with pytest.raises(TypeError):
        decode_image(answer)


@pytest.mark.parametrize(("params", "steps", "msg_id", "bounds"), [
    ({"width": 520}, False, "error-sides", {"low": 256, "high": 1024, "step": 64}),
    ({"samples": 3}, False, "error-samples-range", {"high": 2}),
    ({"steps": 60}, True, "error-steps-range", {"low": 1, "high": 50}),
])
def test_check_rules_names_the_bound(params: dict[str, Any], steps: bool, msg_id: str,
                                     bounds: dict[str, int]) -> None:
    rules = SizeRules(multiple=64, min_side=256, max_side=1024, max_samples=2, max_steps=50)
    check_rules(make_job(steps=60).params, rules, steps=False)
    with raises_message(InvalidProviderRequest, msg_id, **bounds):
        check_rules(make_job(**params).params, rules, steps=steps)
