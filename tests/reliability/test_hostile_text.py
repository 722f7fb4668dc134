"""Hostile text through the parser and the service: captions, option values, the grammar.

Whatever a user types, the parser gives a prompt and options or an ``OptionError`` that fits
in a chat message; the service either refuses with a ``UserError`` (nothing charged) or runs
the job with the prompt as typed, minus invisible control characters, so that an adapter can
escape it for its platform and the backend gets what the user meant.
"""

from __future__ import annotations

import asyncio
import string
import threading
import unicodedata
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.app import App, running_app
from bot.config import build_config
from bot.errors import OptionError, UserError
from bot.events import Done
from bot.jobs import GenerationRequest
from bot.models import ChatRef, UserRef
from bot.options import MAX_SAMPLES, MAX_SEED, SPEC_LIST, Overrides, overrides_from
from bot.parser import parse_caption
from tests.fakes.server import jpeg_bytes

T = TypeVar("T")
PHOTO = jpeg_bytes((96, 72))
MESSAGE_LIMIT = 400  # far below Telegram's 1,024-character caption and Discord's 2,000
ZWJ = "\u200d"


class AppThread:
    """One running app on its own loop, so synchronous hypothesis tests can drive it."""

    def __init__(self, folder: Path) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self._stop: asyncio.Event | None = None
        self.app: App = self.run(self._start(folder))

    async def _start(self, folder: Path) -> App:
        config = build_config({
            "storage": {"url": f"sqlite:///{folder / 'bot.db'}"},
            "credits": {"initial": 1_000_000, "daily_free": 0},
            "defaults": {"provider": "echo"},
            "limits": {"max_queued_per_user": 1000},
            "providers": {"echo": {"type": "echo", "cost": 1, "max_concurrency": 4}},
        }, environ={})
        started: asyncio.Future[App] = self.loop.create_future()
        self._stop = asyncio.Event()

        async def hold() -> None:
            async with running_app(config) as app:
                started.set_result(app)
                assert self._stop is not None
                await self._stop.wait()

        self._task = asyncio.create_task(hold())
        return await started

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=30)

    def close(self) -> None:
        async def stop() -> None:
            assert self._stop is not None
            self._stop.set()
            await self._task

        self.run(stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


@pytest.fixture(scope="module")
def bot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppThread]:
    running = AppThread(tmp_path_factory.mktemp("hostile-text"))
    yield running
    running.close()


def invisible(text: str) -> list[str]:
    """Control, format and surrogate characters left in ``text`` (ZWJ joins emoji: allowed)."""
    return [c for c in text if unicodedata.category(c) in ("Cc", "Cf", "Cs", "Co") and c != ZWJ]


def check_message(message: str) -> None:
    assert message and len(message) <= MESSAGE_LIMIT, message[:200]
    assert not invisible(message), message


async def _submit(app: App, user: str, prompt: str, overrides: Overrides) -> Done | UserError:
    ref = UserRef("telegram", user)
    request = GenerationRequest(user=ref, chat=ChatRef("telegram", user, private=True),
                                image=PHOTO, prompt=prompt, overrides=overrides)
    before = await app.storage.balance(ref.key)
    try:
        handle = await app.service.submit(request)
    except UserError as exc:
        assert await app.storage.balance(ref.key) == before or before is None
        return exc
    final = await handle.wait()
    assert isinstance(final, Done), final
    return final


HOSTILE_CAPTIONS = [
    "/img2img a\x00cat\x07 with\x1b[31m red\x7f eyes",
    "/img2img <b>bold</b> <a href='tg://user?id=1'>link</a> &amp; </i>unclosed <pre>",
    "/img2img *bold* _it_ __under__ ~strike~ ||spoiler|| `code` ```block``` [x](http://a.b)",
    "/img2img \\*escaped\\* \\_ \\` \\[ \\] ( ) ~ > # + - = | { } . !",
    "/img2img \u200fمرحبا بالعالم\u200e \u202eevil\u202c text \u2066isolated\u2069",
    "/img2img a family 👨‍👩‍👧‍👦 with 👍🏽 and 🇺🇦 flags ❤️ and 🏴󠁧󠁢󠁳󠁣󠁴󠁿",
    "/img2img zero\u200bwidth\ufeffspaces and a soft\u00adhyphen",
    "/img2img line one\nline two\r\nline three\ttabbed",
    "/img2img " + "long " * 2000,
    "/img2img " + "x" * 10_000,
    "/img2img --" + "y" * 10_000,
    "/img2img ok --no " + "z" * 10_000,
    "/img2img ok --style " + "s" * 10_000,
    "/img2img ok --steps " + "9" * 10_000,
    "/img2img ok --size " + "1" * 5000 + "x" + "1" * 5000,
    "/img2img \ud800 lone surrogate",
    "/img2img —steps 20 –strength 50% ‘quoted’ “fancy --no „low“ «quality»”",
]


@pytest.mark.parametrize("caption", HOSTILE_CAPTIONS, ids=range(len(HOSTILE_CAPTIONS)))
def test_hostile_captions_parse_cleanly_and_run_or_refuse(bot: AppThread, caption: str) -> None:
    try:
        parsed = parse_caption(caption)
    except OptionError as exc:
        check_message(exc.user_message)
        return
    assert not invisible(parsed.prompt)
    assert parsed.prompt == parsed.prompt.strip()
    outcome = bot.run(_submit(bot.app, "caption", parsed.prompt, parsed.overrides))
    if isinstance(outcome, UserError):
        check_message(outcome.user_message)
        assert len(parsed.prompt) > 2000 or not parsed.prompt
        return
    # The prompt reaches the backend as typed (markup is text; the adapter escapes it).
    assert outcome.params.prompt == parsed.prompt
    for markup in ("<b>", "*bold*", "`code`", "[x](http://a.b)", "👨‍👩‍👧‍👦", "مرحبا"):
        if markup in caption:
            assert markup in outcome.params.prompt


def test_the_service_drops_control_characters_an_adapter_passed_through(bot: AppThread) -> None:
    prompt = "a\x00 cat\u202e with\x1b[0m red\u200b eyes 👨‍👩‍👧"
    outcome = bot.run(_submit(bot.app, "raw", prompt,
                              overrides_from({"negative": "blurry\x00\u202e, dark"})))
    assert isinstance(outcome, Done)
    assert not invisible(outcome.params.prompt) and not invisible(outcome.params.negative_prompt)
    assert "cat" in outcome.params.prompt and "👨‍👩‍👧" in outcome.params.prompt
    assert outcome.params.negative_prompt == "blurry, dark"


BOUNDS: list[tuple[str, str, bool]] = [
    ("--strength", "0", True), ("--strength", "1", True), ("--strength", "100%", True),
    ("--strength", "0%", True), ("--strength", "-0", True), ("--strength", "1.0001", False),
    ("--strength", "101%", False), ("--strength", "-0.1", False), ("--strength", "nan", False),
    ("--strength", "inf", False), ("--strength", "1e400", False), ("--strength", "½", False),
    ("--steps", "1", True), ("--steps", "150", True), ("--steps", "0", False),
    ("--steps", "151", False), ("--steps", "1.5", False), ("--steps", "9" * 40, False),
    ("--cfg", "0", True), ("--cfg", "30", True), ("--cfg", "30.001", False),
    ("--cfg", "-1", False), ("--seed", "0", True), ("--seed", str(MAX_SEED), True),
    ("--seed", str(MAX_SEED + 1), False), ("--seed", "-1", False),
    ("--size", "64x64", True), ("--size", "4096x4096", True), ("--size", "512×768", True),
    ("--size", "63x64", False), ("--size", "64x4097", False), ("--size", "99999x64", False),
    ("--size", "0x0", False), ("--ar", "1:4", True), ("--ar", "4:1", True),
    ("--ar", "1:5", False), ("--ar", "0:1", False), ("--ar", "999:1", False),
    ("--n", "1", True), ("--n", str(MAX_SAMPLES), True), ("--n", "0", False),
    ("--n", str(MAX_SAMPLES + 1), False), ("--style", "anime", True),
    ("--style", "s" * 100, True), ("--style", "s" * 101, False), ("--style", "<b>", False),
    ("--no", "n" * 1000, True), ("--no", "n" * 1001, False),
]


@pytest.mark.parametrize(("flag", "value", "valid"), BOUNDS,
                         ids=[f"{f}={v[:12]}" for f, v, _ in BOUNDS])
def test_option_values_at_and_beyond_their_bounds(bot: AppThread, flag: str, value: str,
                                                  valid: bool) -> None:
    caption = f"/img2img a harbour at dusk {flag} {value}"
    if not valid:
        with pytest.raises(OptionError) as caught:
            parse_caption(caption)
        check_message(caught.value.user_message)
        assert flag.lstrip("-") in caught.value.user_message or flag == "--ar"
        return
    parsed = parse_caption(caption)
    outcome = bot.run(_submit(bot.app, "bounds", parsed.prompt, parsed.overrides))
    if flag == "--style" and value != "anime":
        assert isinstance(outcome, OptionError) and "Unknown style" in outcome.user_message
        check_message(outcome.user_message)
        return
    assert isinstance(outcome, Done), outcome
    params = outcome.params
    assert 64 <= params.width <= 2048 and 64 <= params.height <= 2048
    assert 1 <= params.samples <= MAX_SAMPLES and len(outcome.images) == params.samples
    assert 0 <= params.strength <= 1 and 1 <= params.steps <= 150 and 0 <= params.cfg <= 30


# -- hypothesis over the whole caption grammar ---------------------------------------------

ALL_FLAGS = [flag for spec in SPEC_LIST for flag in spec.flags]
MARKS = ["\u200f", "\u202e", "\u200b", ZWJ, "\x00", "\n", "\ufe0f", "\u0301"]
HOSTILE_CHARS = st.characters(codec="utf-8") | st.sampled_from(
    [*"<>&*_~`|[]()#!\\\"'“”„«»—–", *MARKS])
WORDS = st.text(HOSTILE_CHARS, min_size=1, max_size=15) | st.sampled_from(
    ["👍🏽", "🇺🇦", "👨‍👩‍👧", "<b>", "</i>", "&amp;", "[a](b)", "**", "||x||", "--", "-", "—"])
VALUES = st.one_of(
    st.integers(-10, 10**12).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.tuples(st.integers(0, 5000), st.integers(0, 5000)).map(lambda p: f"{p[0]}x{p[1]}"),
    st.tuples(st.integers(0, 9), st.integers(0, 9)).map(lambda p: f"{p[0]}:{p[1]}"),
    st.sampled_from(["anime", "photo", "50%", "0.5", "sdxl", "echo", "webui", ""]),
    WORDS,
    WORDS.map(lambda w: f'"{w} {w}"'),
    WORDS.map(lambda w: f"“{w}”"),
)


@st.composite
def captions(draw: st.DrawFn) -> str:
    parts: list[str] = []
    if draw(st.booleans()):
        parts.append(draw(st.sampled_from(["/img2img", "/img2img@my_bot", "/IMG2IMG"])))
    for _ in range(draw(st.integers(0, 8))):
        if draw(st.integers(0, 2)) == 0:
            flag = draw(st.sampled_from(ALL_FLAGS))
            flag = draw(st.sampled_from([flag, "—" + flag[2:], flag.upper()])) \
                if flag.startswith("--") else flag
            value = draw(VALUES)
            parts.append(f"{flag}={value}" if draw(st.booleans()) else f"{flag} {value}")
        else:
            parts.append(draw(WORDS))
    separator = draw(st.sampled_from([" ", "  ", "\n", " \t "]))
    return separator.join(parts)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(caption=captions())
def test_any_caption_gives_options_in_bounds_or_a_short_clear_error(caption: str) -> None:
    try:
        parsed = parse_caption(caption)
    except OptionError as exc:
        check_message(exc.user_message)
        return
    assert not invisible(parsed.prompt)
    assert parsed.prompt == parsed.prompt.strip()
    o = parsed.overrides
    assert o.strength is None or 0 <= o.strength <= 1
    assert o.steps is None or 1 <= o.steps <= 150
    assert o.cfg is None or 0 <= o.cfg <= 30
    assert o.seed is None or 0 <= o.seed <= MAX_SEED
    assert o.samples is None or 1 <= o.samples <= MAX_SAMPLES
    assert o.size is None or all(64 <= side <= 4096 for side in o.size)
    assert o.aspect is None or 0.25 <= o.aspect[0] / o.aspect[1] <= 4
    assert o.negative_prompt is None or len(o.negative_prompt) <= 1000
    for name in (o.style, o.provider, o.model):
        assert name is None or (0 < len(name) <= 100 and not set(name) & set(string.whitespace))


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(caption=captions())
def test_any_caption_through_the_service_runs_or_is_refused_free(bot: AppThread,
                                                                  caption: str) -> None:
    try:
        parsed = parse_caption(caption)
    except OptionError:
        return
    outcome = bot.run(_submit(bot.app, "grammar", parsed.prompt, parsed.overrides))
    if isinstance(outcome, UserError):
        check_message(outcome.user_message)
    else:
        assert not invisible(outcome.params.prompt)
        assert outcome.images and outcome.cost >= 1


def test_settings_commands_quote_at_most_a_short_piece_of_what_was_typed(bot: AppThread) -> None:
    user = UserRef("telegram", "prefs")
    for key, value in (("x" * 10_000, "1"), ("steps", "9" * 10_000), ("style", "<b>" * 3000)):
        with pytest.raises(OptionError) as caught:
            bot.run(bot.app.preferences.set_user(user, key, value))
        check_message(caught.value.user_message)
    group = ChatRef("telegram", "-100")
    for key, value in (("z" * 10_000, "on"), ("lock", "q" * 10_000)):
        with pytest.raises(OptionError) as caught:
            bot.run(bot.app.preferences.set_chat(group, key, value))
        check_message(caught.value.user_message)
