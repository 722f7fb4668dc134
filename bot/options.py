"""Per-request options: their names, aliases, bounds and the parsing of one value.

The caption parser, the Discord slash command and the ``/set`` commands all go through
``parse_value`` so an option means the same thing everywhere.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from typing import Any

from bot.errors import OptionError
from bot.i18n import Msg
from bot.limits import MAX_CFG, MAX_SAMPLES, MAX_SEED, MAX_SIDE, MAX_STEPS, MIN_SIDE, MIN_STEPS


@dataclass(frozen=True, slots=True)
class Overrides:
    """What one layer (a request, a user's or a chat's defaults) asks for; None = no opinion."""

    strength: float | None = None
    steps: int | None = None
    cfg: float | None = None
    seed: int | None = None
    size: tuple[int, int] | None = None
    aspect: tuple[int, int] | None = None
    style: str | None = None
    negative_prompt: str | None = None
    provider: str | None = None
    model: str | None = None
    samples: int | None = None

    def given(self) -> dict[str, Any]:
        """The fields that hold a value."""
        return {f.name: getattr(self, f.name) for f in fields(self)
                if getattr(self, f.name) is not None}

    def merged(self, other: Overrides) -> Overrides:
        """``other``'s values on top of these; size and aspect replace each other."""
        values = other.given()
        if "size" in values:
            values["aspect"] = None
        elif "aspect" in values:
            values["size"] = None
        return replace(self, **values)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly form for storage."""
        out: dict[str, Any] = {}
        for name, value in self.given().items():
            out[name] = (f"{value[0]}x{value[1]}" if name == "size"
                         else f"{value[0]}:{value[1]}" if name == "aspect" else value)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Overrides:
        """Parse a stored dict, skipping keys that are not options or no longer valid."""
        values: dict[str, Any] = {}
        for key, raw in data.items():
            spec = SPECS.get(key)
            if spec is None or raw is None:
                continue
            try:
                values[spec.field] = spec.parse(str(raw))
            except OptionError:
                continue
        return cls(**values)


def _number(text: str, kind: Callable[[str], Any], low: float, high: float, what: str) -> Any:
    try:
        value = kind(text)
    except ValueError:
        raise _out_of_range(kind, low, high, what) from None
    if value != value or not low <= value <= high:  # NaN fails the first test
        raise _out_of_range(kind, low, high, what)
    return value


def _out_of_range(kind: Callable[[str], Any], low: float, high: float, what: str) -> OptionError:
    if kind is int:
        return OptionError(msg=Msg("error-number-whole",
                                   {"option": what, "low": int(low), "high": int(high)}))
    return OptionError(msg=Msg("error-number", {"option": what, "low": low, "high": high}))


def _strength(text: str) -> float:
    text = text.strip()
    if text.endswith("%"):
        return round(float(_number(text[:-1], float, 0, 100, "--strength")) / 100, 4)
    return float(_number(text, float, 0.0, 1.0, "--strength"))


def _seed(text: str) -> int:
    return int(_number(text.strip(), int, 0, MAX_SEED, "--seed"))


def _size(text: str) -> tuple[int, int]:
    match = re.fullmatch(r"\s*(\d{1,5})\s*[x×*]\s*(\d{1,5})\s*", text, re.IGNORECASE)
    if not match:
        raise OptionError(msg=Msg("error-size-format"))
    width, height = int(match[1]), int(match[2])
    if not (MIN_SIDE <= width <= MAX_SIDE and MIN_SIDE <= height <= MAX_SIDE):
        raise OptionError(msg=Msg("error-size-range", {"low": MIN_SIDE, "high": MAX_SIDE}))
    return width, height


def _aspect(text: str) -> tuple[int, int]:
    match = re.fullmatch(r"\s*(\d{1,3})\s*[:/]\s*(\d{1,3})\s*", text)
    if not match or int(match[1]) == 0 or int(match[2]) == 0:
        raise OptionError(msg=Msg("error-ar-format"))
    width, height = int(match[1]), int(match[2])
    if not 0.25 <= width / height <= 4:
        raise OptionError(msg=Msg("error-ar-range"))
    return width, height


def _name(what: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        value = text.strip()
        if not re.fullmatch(r"[\w.:/@+\-]{1,100}", value):
            raise OptionError(msg=Msg("error-name", {"option": what}))
        return value

    return parse


def clean_text(text: str) -> str:
    """Drop control and format characters (keeping line breaks as spaces)."""
    out = []
    for char in text:
        category = unicodedata.category(char)
        if char in "\n\r\t":
            out.append(" ")
        elif category in ("Cc", "Cs", "Co") or (category == "Cf" and char not in "\u200d"):
            continue
        else:
            out.append(char)
    return "".join(out)


def _text(text: str) -> str:
    value = " ".join(clean_text(text).split())
    if len(value) > 1000:
        raise OptionError(msg=Msg("error-negative-too-long", {"limit": 1000}))
    return value


@dataclass(frozen=True, slots=True)
class OptionSpec:
    field: str
    flags: tuple[str, ...]
    parse: Callable[[str], Any]
    help_msg: Msg  # what the option does, for /help and for a flag given without a value

    @property
    def help(self) -> str:
        """The option's description in the current reader's language."""
        return self.help_msg.render()


SPEC_LIST: tuple[OptionSpec, ...] = (
    OptionSpec("strength", ("--strength", "-s", "--denoise"), _strength, Msg("option-strength")),
    OptionSpec("steps", ("--steps",),
               lambda t: int(_number(t.strip(), int, MIN_STEPS, MAX_STEPS, "--steps")),
               Msg("option-steps", {"low": MIN_STEPS, "high": MAX_STEPS})),
    OptionSpec("cfg", ("--cfg", "--guidance"),
               lambda t: float(_number(t.strip(), float, 0.0, MAX_CFG, "--cfg")),
               Msg("option-cfg", {"high": MAX_CFG})),
    OptionSpec("seed", ("--seed",), _seed, Msg("option-seed", {"high": MAX_SEED})),
    OptionSpec("size", ("--size",), _size, Msg("option-size")),
    OptionSpec("aspect", ("--ar", "--aspect"), _aspect, Msg("option-aspect")),
    OptionSpec("style", ("--style",), _name("--style"), Msg("option-style")),
    OptionSpec("negative_prompt", ("--no", "--negative"), _text, Msg("option-negative")),
    OptionSpec("provider", ("--provider", "--backend"), _name("--provider"),
               Msg("option-provider")),
    OptionSpec("model", ("--model",), _name("--model"), Msg("option-model")),
    OptionSpec("samples", ("--n", "--count", "--samples"),
               lambda t: int(_number(t.strip(), int, 1, MAX_SAMPLES, "--n")),
               Msg("option-samples", {"high": MAX_SAMPLES})),
)

SPECS: dict[str, OptionSpec] = {}
for _spec in SPEC_LIST:
    SPECS[_spec.field] = _spec
    for _flag in _spec.flags:
        SPECS[_flag.lstrip("-")] = _spec
# Friendly names for /set and slash commands.
SPECS["negative"] = SPECS["negative_prompt"]
SPECS["ar"] = SPECS["aspect"]
SPECS["count"] = SPECS["samples"]

FLAGS: dict[str, OptionSpec] = {flag: spec for spec in SPEC_LIST for flag in spec.flags}


def quote(text: str, limit: int = 40) -> str:
    """What the user typed, cut to ``limit`` characters, for an error message that must fit."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def option_names() -> str:
    """The allowed flags, for error messages."""
    return ", ".join(spec.flags[0] for spec in SPEC_LIST)


def parse_value(name: str, text: str) -> tuple[str, Any]:
    """Parse one option given by field name, alias or flag; returns (field, value)."""
    spec = SPECS.get(name.strip().lstrip("-—").lower())
    if spec is None:
        raise OptionError(msg=Msg("error-unknown-option",
                                  {"option": repr(quote(name)), "allowed": option_names()}))
    return spec.field, spec.parse(text)


def overrides_from(values: dict[str, str | int | float | None]) -> Overrides:
    """Overrides from already separated option values (a slash command's options)."""
    parsed: dict[str, Any] = {}
    for name, raw in values.items():
        if raw is None or raw == "":
            continue
        field, value = parse_value(name, str(raw))
        parsed[field] = value
    return Overrides(**parsed)
