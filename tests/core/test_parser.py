from __future__ import annotations

import contextlib
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.errors import OptionError
from bot.options import Overrides, overrides_from, parse_value
from bot.parser import parse_caption, strip_command
from tests.texts import en, head


def test_prompt_and_every_option() -> None:
    parsed = parse_caption(
        '/img2img@my_bot a "neon" city at night --strength 0.7 --steps 30 --cfg 6.5 --seed 42 '
        '--size 768x512 --style anime --no "cars, people" --provider webui --model sdxl --n 2')
    assert parsed.prompt == 'a "neon" city at night'
    assert parsed.overrides == Overrides(
        strength=0.7, steps=30, cfg=6.5, seed=42, size=(768, 512), style="anime",
        negative_prompt="cars, people", provider="webui", model="sdxl", samples=2)


def test_aliases_equals_form_and_dashes() -> None:
    parsed = parse_caption("/img2img a dog's face -s 40% —steps=12 --ar 3:2 --no blurry, dark")
    assert parsed.prompt == "a dog's face"
    assert parsed.overrides.strength == 0.4
    assert parsed.overrides.steps == 12
    assert parsed.overrides.aspect == (3, 2)
    assert parsed.overrides.negative_prompt == "blurry, dark"


def test_options_before_prompt_and_greedy_negative_stops_at_next_flag() -> None:
    parsed = parse_caption("--seed 1 watercolor fox --no rain snow --steps 5")
    assert parsed.prompt == "watercolor fox"
    assert parsed.overrides.negative_prompt == "rain snow"
    assert parsed.overrides.steps == 5


def test_caption_without_command_is_a_prompt() -> None:
    assert parse_caption("make it snow").prompt == "make it snow"
    assert strip_command("/img2img@bot hi") == ("img2img", "hi")
    assert strip_command("hi") == (None, "hi")


@pytest.mark.parametrize(("text", "fragment"), [
    ("x --strength 2", en("error-number", option="--strength", low=0, high=1)),
    ("x --steps 0", en("error-number-whole", option="--steps", low=1, high=150)),
    ("x --steps ten", en("error-number-whole", option="--steps", low=1, high=150)),
    ("x --size 10x10", en("error-size-range", low=64, high=4096)),
    ("x --size big", en("error-size-format")),
    ("x --ar 10:1", en("error-ar-range")),
    ("x --n 9", en("error-number-whole", option="--n", low=1, high=4)),
    ("x --bogus 1", head("error-unknown-option", option="--bogus") + "--strength"),
    ("x --steps", head("error-option-needs-value", option="--steps")),
    ("x --steps 3 --steps 4", en("error-option-twice", option="--steps")),
    ('x --no "open quote', en("error-quote-unclosed")),
    ("x --seed -1", en("error-number-whole", option="--seed", low=0, high=2**32 - 1)),
    ("x --strength nan", en("error-number", option="--strength", low=0, high=1)),
])
def test_bad_options_say_what_is_allowed(text: str, fragment: str) -> None:
    with pytest.raises(OptionError, match=re.escape(fragment)):
        parse_caption(text)


def test_control_characters_are_dropped() -> None:
    assert parse_caption("/img2img a\x00b\u202ec\nd").prompt == "abc d"


def test_parse_value_and_overrides_from() -> None:
    assert parse_value("negative", "blurry") == ("negative_prompt", "blurry")
    assert overrides_from({"strength": 0.5, "count": 2, "size": None}) == Overrides(
        strength=0.5, samples=2)
    with pytest.raises(OptionError):
        parse_value("nope", "1")


def test_overrides_round_trip_and_merge() -> None:
    layer = Overrides(size=(512, 512), steps=10)
    assert Overrides.from_dict(layer.to_dict()) == layer
    merged = layer.merged(Overrides(aspect=(3, 2)))
    assert merged.size is None and merged.aspect == (3, 2) and merged.steps == 10
    assert Overrides.from_dict({"steps": "999", "junk": 1}) == Overrides()


FLAG_WORDS = st.sampled_from(["--strength", "--steps", "--cfg", "--seed", "--size", "--ar",
                              "--style", "--no", "--provider", "--model", "--n", "-s", "—steps",
                              "--x", '"', "“", "=", "--n=2", "--no="])


@settings(max_examples=400, deadline=None)
@given(st.lists(st.one_of(FLAG_WORDS, st.text(max_size=12)), max_size=12))
def test_any_input_parses_or_raises_option_error(words: list[str]) -> None:
    text = "/img2img " + " ".join(words)
    try:
        parsed = parse_caption(text)
    except OptionError as exc:
        assert exc.user_message
    else:
        assert isinstance(parsed.prompt, str)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_any_text_parses_or_raises_option_error(text: str) -> None:
    with contextlib.suppress(OptionError):
        parse_caption(text)
