"""What the framework-native handlers promise: old buttons expire politely, one error handler."""

from __future__ import annotations

import logging

import pytest

from tests.telegram.conftest import OWNER_ID, USER_ID, Harness
from tests.telegram.talk import say
from tests.texts import en, warning


async def test_a_settings_button_from_before_the_upgrade_expires_with_a_clear_answer(
        tg: Harness) -> None:
    menu = await say(tg, "/settings")
    assert menu.button(en("settings-key-strength-up"))["callback_data"].startswith("su:")
    before = len(tg.fake.callback_answers)
    for old in (f"s:u:{USER_ID}:s+", "s:c:nsfw", "r:sideways:0123", "nonsense"):
        tg.send(tg.fake.build.callback(menu, old))
    await tg.fake.wait_for(lambda: len(tg.fake.callback_answers) >= before + 4, what="answers")
    for answer in tg.fake.callback_answers[before:]:
        assert answer["show_alert"] and answer["text"] == en("button-expired")
    reply = await say(tg, "/settings")
    assert reply.text == menu.text  # nothing changed


async def test_result_buttons_keep_the_packed_format_of_older_versions(tg: Harness) -> None:
    request = tg.send(tg.fake.build.photo(caption="/img2img a cat"))
    result = await tg.result(request)
    data = [result.button(label)["callback_data"] for label in (en("dc-button-again"), "➖", "➕",
                                                              en("dc-button-reuse"))]
    job = data[0].split(":")[2]
    assert data == [f"r:{action}:{job}" for action in ("again", "weaker", "stronger", "reuse")]


async def test_an_unexpected_error_is_logged_and_answered_in_one_short_sentence(
        tg: Harness, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    async def broken() -> None:
        raise RuntimeError("the stats query broke")

    monkeypatch.setattr(tg.app, "stats", broken)
    with caplog.at_level(logging.ERROR, logger="adapters.telegram.replies"):
        reply = await say(tg, "/stats", user_id=OWNER_ID)
    assert reply.text == warning("error-generic")
    # The traceback is on the record, or folded into its message by the redacting log filter.
    assert any(r.levelno == logging.ERROR
               and "the stats query broke" in r.getMessage() + repr(r.exc_info)
               for r in caplog.records)
