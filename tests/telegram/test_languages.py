"""The bot answers in the user's Telegram language, or the one chosen with /set language."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from babel.dates import format_datetime

from bot.i18n import LOCALES, negotiate, render
from bot.imaging import FORMATS
from bot.models import ChatRef
from bot.options import option_names, quote
from tests.fakes.a1111 import FakeA1111
from tests.fakes.telegram_api import FakeTelegram
from tests.telegram.conftest import GROUP_ID, start_telegram
from tests.telegram.talk import say
from tests.texts import head

SPEAKER = 5150


@pytest.mark.parametrize("code", ["ru", "es", "pt-BR", "fa", "de"])
async def test_help_errors_refusals_and_the_result_speak_the_users_language(
        fake: FakeTelegram, a1111: FakeA1111, settings: dict[str, Any], code: str) -> None:
    locale = negotiate(code)
    settings["credits"]["initial"] = 1
    a1111.delay = 0.5  # the status message stays long enough to be read
    fake.add_user(SPEAKER, language_code=code)
    async with start_telegram(fake, a1111, settings) as tg:
        help_text = (await say(tg, "/help", user_id=SPEAKER)).text or ""
        assert help_text.startswith(render("help-how-title", locale))
        assert render("help-options", locale) in help_text
        assert render("option-strength", locale) in help_text  # each option's own line
        assert render("provider-price", locale, count=1) in help_text
        balance = (await say(tg, "/balance", user_id=SPEAKER)).text or ""
        assert balance.startswith(render("balance-line", locale, count=1))
        assert (await say(tg, "/cancel", user_id=SPEAKER)).text == render("cancel-none", locale)

        update = tg.send(fake.build.photo(caption="/img2img a cat --bogus 1", user_id=SPEAKER))
        refused = await tg.reply(update)
        assert refused.text == "⚠️ " + render("error-unknown-option", locale,
                                               option=quote("--bogus"), allowed=option_names())

        # The core's own refusals (image checks, option ranges, the prompt) are translated too.
        update = tg.send(fake.build.document(b"just text", file_name="fake.jpg",
                                             caption="/img2img a cat", user_id=SPEAKER))
        assert (await tg.reply(update)).text == "⚠️ " + render(
            "error-image-unreadable", locale, formats=FORMATS)
        update = tg.send(fake.build.photo(caption="/img2img a cat --strength 7",
                                          user_id=SPEAKER))
        assert (await tg.reply(update)).text == "⚠️ " + render(
            "error-number", locale, option="--strength", low=0.0, high=1.0)
        update = tg.send(fake.build.photo(caption="/img2img --steps 20", user_id=SPEAKER))
        assert (await tg.reply(update)).text == "⚠️ " + render("error-prompt-missing", locale)

        update = tg.send(fake.build.photo(caption="/img2img a cat", user_id=SPEAKER))
        status = await tg.reply(update, kind="text")
        caption = (await tg.result(update)).caption or ""
        assert caption.startswith(f"{render('field-prompt', locale)}: a cat")
        assert f"{render('field-balance', locale)}: 0" in caption
        await tg.settled(SPEAKER)
        shown = [h["text"] for h in status.history] + [status.text]
        assert any(line == render("status-next", locale)
                   or line.startswith(render("status-generating-word", locale))
                   for line in shown), shown

        update = tg.send(fake.build.photo(caption="/img2img a dog", user_id=SPEAKER))
        answer = await tg.reply(update)
        assert answer.text == "⚠️ " + render("error-insufficient-credits", locale,
                                              count=1, balance=0)
        assert await tg.balance(SPEAKER) == 0


async def test_set_language_overrides_telegrams(fake: FakeTelegram, a1111: FakeA1111,
                                                settings: dict[str, Any]) -> None:
    fake.add_user(SPEAKER, language_code="en")
    async with start_telegram(fake, a1111, settings) as tg:
        reply = await say(tg, "/set language uk", user_id=SPEAKER)
        assert reply.text == render("language-set", "uk", language="Українська")
        help_text = (await say(tg, "/help", user_id=SPEAKER)).text or ""
        assert help_text.startswith(render("help-how-title", "uk"))
        reply = await say(tg, "/set language klingon", user_id=SPEAKER)
        assert reply.text == "⚠️ " + render("error-unknown-language", "uk", code="klingon",
                                             available=", ".join(LOCALES))
        await say(tg, "/reset language", user_id=SPEAKER)
        help_text = (await say(tg, "/help", user_id=SPEAKER)).text or ""
        assert help_text.startswith(render("help-how-title", "en"))


async def test_the_command_menu_is_registered_for_each_shipped_language(
        fake: FakeTelegram, a1111: FakeA1111, settings: dict[str, Any]) -> None:
    async with start_telegram(fake, a1111, settings):
        await fake.wait_for_call("setMyCommands", count=3 * len(LOCALES))
        for locale in LOCALES:
            code = "" if locale == "en" else locale.split("_")[0]
            for scope in ("all_private_chats", "all_group_chats", "all_chat_administrators"):
                menu = {c["command"]: c["description"] for c in fake.commands(scope,
                                                                            language_code=code)}
                assert menu["help"] == render("menu-help", locale), (locale, scope)
                assert menu["img2img"] == render("menu-img2img", locale)


async def test_a_chats_default_language_applies_until_the_user_chooses_one(
        fake: FakeTelegram, a1111: FakeA1111, settings: dict[str, Any]) -> None:
    admin = 777
    fake.set_member(GROUP_ID, admin, "administrator")
    fake.add_user(SPEAKER, language_code="en")
    async with start_telegram(fake, a1111, settings) as tg:
        reply = await say(tg, "/chatset language es", chat_id=GROUP_ID, user_id=admin)
        assert reply.text == render("chat-language-set", "es", language="Español")
        help_text = (await say(tg, "/help", chat_id=GROUP_ID, user_id=SPEAKER)).text or ""
        assert help_text.startswith(render("help-how-title", "es"))
        private = (await say(tg, "/help", user_id=SPEAKER)).text or ""
        assert private.startswith(render("help-how-title", "en"))  # the group's only

        await say(tg, "/set language de", user_id=SPEAKER)  # the user's choice wins
        help_text = (await say(tg, "/help", chat_id=GROUP_ID, user_id=SPEAKER)).text or ""
        assert help_text.startswith(render("help-how-title", "de"))

        reply = await say(tg, "/chatset language off", chat_id=GROUP_ID, user_id=admin)
        assert reply.text == render("chat-language-cleared", "es")  # said in the chat's last
        reply = await say(tg, "/chatset language xx", chat_id=GROUP_ID, user_id=admin)
        assert reply.text == "⚠️ " + render("error-unknown-language", "en", code="xx",
                                             available=", ".join(LOCALES))


async def test_the_cores_notices_on_a_result_are_in_the_requesters_language(
        fake: FakeTelegram, a1111: FakeA1111, settings: dict[str, Any]) -> None:
    fake.add_user(SPEAKER, language_code="ru")
    async with start_telegram(fake, a1111, settings) as tg:
        group = ChatRef("telegram", str(GROUP_ID))
        await tg.app.preferences.set_chat(group, "strength", "0.3")
        await tg.app.preferences.set_chat(group, "lock", "strength")
        update = tg.send(fake.build.photo(caption="/img2img a cat --strength 0.9",
                                          chat_id=GROUP_ID, user_id=SPEAKER))
        caption = (await tg.result(update)).caption or ""
        await tg.app.preferences.set_chat(group, "banned_words", "add dog")
        update = tg.send(fake.build.photo(caption="/img2img a dog", chat_id=GROUP_ID,
                                          user_id=SPEAKER))
        refused = (await tg.reply(update)).text
    assert refused == "⚠️ " + render("error-banned-word", "ru")
    assert render("notice-locked", "ru", name="strength", value="0.3") in caption
    assert head("notice-locked").strip() not in caption  # nor the English


async def test_a_backends_refusal_reaches_the_reader_in_their_language(
        fake: FakeTelegram, a1111: FakeA1111, settings: dict[str, Any]) -> None:
    """The bot's sentence is Russian; the backend's own words inside it stay as it sent them."""
    fake.add_user(SPEAKER, language_code="ru")
    a1111.fail("validation")
    async with start_telegram(fake, a1111, settings) as tg:
        update = tg.send(fake.build.photo(caption="/img2img a cat", user_id=SPEAKER))
        status = await tg.reply(update)
        await fake.wait_for(lambda: (status.text or "").startswith("⚠️"), what="the failure")
        refusal = render("error-invalid-request-reason", "ru",
                         reason="steps: value is not a valid integer")  # the fake's words
        assert status.text == "⚠️ " + render("failure-refunded-balance", "ru", message=refusal,
                                              balance=settings["credits"]["initial"])
        assert await tg.balance(SPEAKER) == settings["credits"]["initial"]


async def test_the_settings_menu_and_its_buttons_speak_the_users_language(
        fake: FakeTelegram, a1111: FakeA1111, settings: dict[str, Any]) -> None:
    fake.add_user(SPEAKER, language_code="de")
    async with start_telegram(fake, a1111, settings) as tg:
        menu = await say(tg, "/settings", user_id=SPEAKER)
        usage = await say(tg, "/set", user_id=SPEAKER)
    assert (menu.text or "").startswith(render("tg-set-title", "de"))
    assert render("settings-key-strength-up", "de") in menu.button_texts
    assert render("settings-key-reset", "de") in menu.button_texts
    assert (usage.text or "").startswith("So geht's: /set KEY VALUE")


@pytest.mark.parametrize("code", ["ru", "de"])
async def test_balance_shows_its_ledger_lines_in_the_users_language(
        fake: FakeTelegram, a1111: FakeA1111, settings: dict[str, Any], code: str) -> None:
    fake.add_user(SPEAKER, language_code=code)
    async with start_telegram(fake, a1111, settings) as tg:
        update = tg.send(fake.build.photo(caption="/img2img a cat", user_id=SPEAKER))
        await tg.result(update)
        await tg.settled(SPEAKER)
        lines = ((await say(tg, "/balance", user_id=SPEAKER)).text or "").splitlines()
        assert lines[:3] == [render("balance-line", code, count=9), "",
                             render("tg-recent", code)]
        image, welcome = lines[3:]
        month = format_datetime(datetime.now(UTC), "MMM", tzinfo=UTC, locale=code)
        assert image.startswith(month) and welcome.startswith(month)
        assert image.endswith(f" -1 {render('ledger-reserve', code)}")
        assert welcome.endswith(f" +10 {render('ledger-initial', code)}")
        assert "image" not in image and "welcome" not in welcome


@pytest.mark.parametrize(("answer", "reason"), [
    (b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, "error-result-damaged"),  # a PNG in name only
    (b"plain text, not a picture", "error-not-an-image"),
])
async def test_a_backends_unusable_image_is_explained_in_the_users_language(
        fake: FakeTelegram, a1111: FakeA1111, settings: dict[str, Any], answer: bytes,
        reason: str) -> None:
    fake.add_user(SPEAKER, language_code="ru")
    a1111.result_bytes = answer
    async with start_telegram(fake, a1111, settings) as tg:
        update = tg.send(fake.build.photo(caption="/img2img a cat", user_id=SPEAKER))
        status = await tg.reply(update, kind="text")
        told = "⚠️ " + render("failure-refunded-balance", "ru", balance=10,
                              message=render(reason, "ru"))
        await fake.wait_for(lambda: status.text == told, what="the reason, in Russian")
        assert render(reason, "ru") != render(reason, "en")
        assert await tg.balance(SPEAKER) == 10
