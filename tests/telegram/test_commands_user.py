"""User commands end to end: real aiogram polling the fake Bot API, the real core behind it."""

from __future__ import annotations

from typing import Any

import pytest

from bot.presenter import EXAMPLE
from tests.telegram.conftest import GROUP_ID, USER_ID, Harness
from tests.telegram.talk import press, say
from tests.texts import en, plain, warning

OTHER_ID = 777


async def generate(tg: Harness, caption: str = "/img2img a cat") -> str:
    """Ask for an image through the photo flow; the job id (from the result's buttons)."""
    request = tg.send(tg.fake.build.photo(caption=caption))
    result = await tg.result(request)
    return str(result.button(en("dc-button-again"))["callback_data"]).rsplit(":", 1)[-1]


async def user_settings(tg: Harness, user_id: int = USER_ID) -> dict[str, Any]:
    return await tg.app.storage.user_settings(f"telegram:{user_id}")


@pytest.fixture
def settings(settings: dict[str, Any]) -> dict[str, Any]:
    """Styles with markup-like text, so an unescaped /help or /styles would fail to send."""
    settings["styles"] = {"anime": {"prompt": "{prompt}, anime style"},
                          "neon": {"prompt": "{prompt} <lora:neon> & glow"}}
    return settings


async def test_start_shows_welcome_balance_and_example(tg: Harness) -> None:
    reply = await say(tg, "/start")
    assert reply.parse_mode == "HTML"
    assert reply.text is not None
    assert en("balance-line", count=10) in reply.text
    assert EXAMPLE in reply.text and "/help" in reply.text


async def test_help_lists_syntax_options_styles_and_providers(tg: Harness) -> None:
    reply = await say(tg, "/help")
    assert reply.text is not None
    assert plain("help-how") in reply.text
    assert f"--strength / -s / --denoise: {en('option-strength')}" in reply.text
    assert "neon: … <lora:neon> & glow" in reply.text
    assert f"webui: a1111, {en('provider-price', count=1)}" in reply.text
    assert en("help-private") in reply.text  # private chats only
    owners = en("help-owners").split()[0]  # the section's heading word
    assert owners not in reply.text and "/chatset" not in reply.text
    group = await say(tg, "/help@img2img_test_bot", chat_id=GROUP_ID)
    assert group.text is not None and en("help-admins") in group.text
    assert group.reply_to_message_id is not None  # in a group the bot replies to the asker


async def test_balance_shows_recent_ledger_movements(tg: Harness) -> None:
    await generate(tg)
    await tg.idle()
    reply = await say(tg, "/balance")
    assert reply.text is not None
    lines = reply.text.splitlines()
    assert lines[0] == en("balance-line", count=9)
    assert lines[-2].endswith(f"-1 {en('ledger-reserve')}")
    assert lines[-1].endswith(f"+10 {en('ledger-initial')}")


async def test_settings_buttons_then_set_and_reset(tg: Harness) -> None:
    menu = await say(tg, "/settings")
    assert menu.text is not None and "strength 0.6 · steps 25 · style none" in menu.text
    assert all(len(b["callback_data"].encode()) <= 64 for row in menu.buttons for b in row)

    answer = await press(tg, menu, en("settings-key-strength-up"))
    assert answer["text"] == en("setting-user-default", key="strength", value=0.7)
    assert "strength 0.7" in (menu.text or "")  # the same message, edited
    await press(tg, menu, en("settings-key-steps-down"))
    await press(tg, menu, "anime")
    assert "✓ anime" in menu.button_texts
    answer = await press(tg, menu, en("settings-key-file", state="on").removesuffix(": on"))
    assert answer["text"] == en("setting-on", key="file")
    assert en("settings-key-file", state="on") in menu.button_texts
    assert await user_settings(tg) == {"version": 1, "defaults": {"strength": 0.7, "steps": 20,
                                                    "style": "anime"}, "prefs": {"file": True}}

    # Someone else's press changes nothing.
    answer = await press(tg, menu, en("settings-key-strength-up"), user_id=OTHER_ID)
    assert answer["show_alert"] and answer["text"] == en("tg-settings-not-yours")
    assert (await user_settings(tg))["defaults"]["strength"] == 0.7

    reply = await say(tg, "/set steps 30")
    assert reply.text == en("setting-user-default", key="steps", value=30)
    reply = await say(tg, "/set steps 999")
    assert reply.text == warning("error-number-whole", option="--steps", low=1, high=150)
    reply = await say(tg, "/set")
    assert reply.text is not None and reply.text.startswith(plain("tg-set-usage"))
    reply = await say(tg, "/reset strength")
    assert reply.text == en("settings-user-reset-key", key="strength")
    assert await user_settings(tg) == {"version": 1, "defaults": {"steps": 30, "style": "anime"},
                                       "prefs": {"file": True}}
    reply = await say(tg, "/reset")
    assert reply.text == en("settings-user-reset")
    assert await user_settings(tg) == {}

    # The next request starts from the personal defaults.
    await say(tg, "/set steps 12")
    await generate(tg)
    assert tg.a1111.img2img_bodies[-1]["steps"] == 12


async def test_settings_reset_button_and_limits(tg: Harness) -> None:
    await say(tg, "/set strength 1")
    menu = await say(tg, "/settings")
    answer = await press(tg, menu, en("settings-key-strength-up"))
    assert answer["text"] == en("setting-at-limit")
    answer = await press(tg, menu, en("settings-key-reset"))
    assert answer["text"] == en("settings-user-reset")
    assert await user_settings(tg) == {}
    assert "strength 0.6 ·" in (menu.text or "")


async def test_styles_and_providers(tg: Harness) -> None:
    styles = await say(tg, "/styles")
    assert styles.text == (f"{en('help-styles')} (--style NAME)\nanime: …, anime style\n"
                           "neon: … <lora:neon> & glow")
    providers = await say(tg, "/providers")
    assert providers.text == (f"{en('help-providers')} (--provider NAME)\n"
                              f"webui: a1111, {en('provider-price', count=1)}")


async def test_cancel_refunds_the_queued_job(tg: Harness) -> None:
    reply = await say(tg, "/cancel")
    assert reply.text == en("cancel-none")
    tg.a1111.delay = 5
    tg.send(tg.fake.build.photo(caption="/img2img first"))
    await tg.fake.wait_for(lambda: tg.a1111.img2img_bodies, what="the first job to run")
    tg.send(tg.fake.build.photo(caption="/img2img second"))
    await tg.fake.wait_for(lambda: len(tg.app.service.active) == 2, what="a queued job")
    queued = max(tg.app.service.active.values(), key=lambda h: h.created)
    await tg.fake.wait_for(lambda: en("status-next") in tg.fake.texts(USER_ID),
                           what="its status message")  # so the next message is the answer

    reply = await say(tg, "/cancel")
    assert reply.text == en("cancel-latest-refunded")
    job = await tg.app.storage.get_job(queued.id)
    assert job is not None and job.status == "cancelled"
    assert await tg.ledger() == [("initial", 10), ("reserve", -1), ("reserve", -1),
                                 ("refund", 1)]
    assert await tg.balance() == 9
    assert len(tg.a1111.img2img_bodies) == 1  # the cancelled job never reached the backend

    await say(tg, "/cancel")  # the running one too, so the test ends quickly
    await tg.idle()
    assert await tg.balance() == 10
    await tg.assert_ledger_consistent()


async def test_forget_erases_prompts_and_settings_after_confirmation(tg: Harness) -> None:
    await say(tg, "/set steps 30")
    job_id = await generate(tg, "/img2img my secret prompt")
    await tg.idle()
    job = await tg.app.storage.get_job(job_id)
    assert job is not None and job.params["prompt"] == "my secret prompt"

    ask = await say(tg, "/forget")
    assert ask.button_texts == [en("forget-key-erase"), en("forget-key-keep")]
    await press(tg, ask, en("forget-key-keep"))
    assert ask.text == en("forget-kept") and ask.buttons == []
    assert await user_settings(tg) != {}

    ask = await say(tg, "/forget")
    answer = await press(tg, ask, en("forget-key-erase"))
    assert answer["text"] == ask.text == en("forget-done", count=1)
    assert await user_settings(tg) == {}
    job = await tg.app.storage.get_job(job_id)
    assert job is not None and job.params == {} and job.origin == {}
    assert await tg.balance() == 9  # the ledger stays for the audit trail


async def test_anonymous_admin_has_no_personal_balance(tg: Harness) -> None:
    reply = await say(tg, "/balance", chat_id=GROUP_ID, anonymous_admin=True)
    assert reply.text == warning("tg-anonymous")
