"""Group-admin and owner commands end to end: rights checked with getChatMember, then obeyed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.fakes.a1111 import FakeA1111
from tests.fakes.telegram_api import FakeTelegram
from tests.telegram.conftest import (
    GROUP_ID,
    OWNER_ID,
    USER_ID,
    Harness,
    make_settings,
    start_telegram,
)
from tests.telegram.talk import press, say
from tests.texts import en, plain, warning

ADMIN_ID = 777
NOT_ADMIN = warning("tg-not-admin")
NOT_OWNER = warning("dc-owners-only")


@pytest.fixture(autouse=True)
def members(fake: FakeTelegram) -> None:
    fake.set_member(GROUP_ID, ADMIN_ID, "administrator")
    fake.set_member(GROUP_ID, USER_ID, "member")


async def chat_settings(tg: Harness) -> dict[str, Any]:
    return await tg.app.storage.chat_settings(f"telegram:{GROUP_ID}")


def member_lookups(fake: FakeTelegram, user_id: int) -> int:
    return len([c for c in fake.calls_to("getChatMember") if c.params["user_id"] == user_id])


async def test_non_admin_refused_admin_accepted_and_the_group_obeys(tg: Harness) -> None:
    reply = await say(tg, "/chatset banned_words add dragon", chat_id=GROUP_ID)
    assert reply.text == NOT_ADMIN
    assert await chat_settings(tg) == {}

    reply = await say(tg, "/chatset banned_words add dragon", chat_id=GROUP_ID,
                      user_id=ADMIN_ID)
    assert reply.text == en("setting-banned-words", count=1)
    reply = await say(tg, "/chatset steps 10", chat_id=GROUP_ID, user_id=ADMIN_ID)
    assert reply.text == en("setting-chat-default", key="steps", value=10)
    reply = await say(tg, "/chatset@img2img_test_bot lock steps", chat_id=GROUP_ID,
                      user_id=ADMIN_ID)
    assert reply.text == en("setting-locked", key="steps")
    assert member_lookups(tg.fake, ADMIN_ID) == 1  # cached between commands

    refused = tg.send(tg.fake.build.photo(caption="/img2img a red Dragon", chat_id=GROUP_ID))
    reply = await tg.reply(refused, contains=en("error-banned-word"))
    assert reply.text == warning("error-banned-word")
    assert ("reserve", -1) not in await tg.ledger()
    assert tg.a1111.img2img_bodies == []

    request = tg.send(tg.fake.build.photo(caption="/img2img a cat --steps 40",
                                          chat_id=GROUP_ID))
    await tg.result(request)
    assert tg.a1111.img2img_bodies[-1]["steps"] == 10  # the locked chat value wins
    await tg.idle()
    assert await tg.ledger() == [("initial", 10), ("reserve", -1)]


async def test_anonymous_admin_counts_as_admin(tg: Harness) -> None:
    reply = await say(tg, "/chatset nsfw on", chat_id=GROUP_ID, anonymous_admin=True)
    assert reply.text == en("setting-on", key="nsfw")
    assert (await chat_settings(tg))["policy"]["nsfw"] is True
    assert tg.fake.counts["getChatMember"] == 0


async def test_chatsettings_and_its_buttons_check_the_presser(tg: Harness) -> None:
    reply = await say(tg, "/chatsettings", chat_id=GROUP_ID)
    assert reply.text == NOT_ADMIN
    shown = await say(tg, "/chatsettings", chat_id=GROUP_ID, user_id=ADMIN_ID)
    assert shown.text is not None
    assert "enabled: on" in shown.text and "banned_words: 0" in shown.text
    assert shown.button_texts == ["enabled: on", "nsfw: off"]

    answer = await press(tg, shown, "nsfw", user_id=USER_ID)
    assert answer["show_alert"] and answer["text"] == en("tg-not-admin")
    assert await chat_settings(tg) == {}

    answer = await press(tg, shown, "nsfw", user_id=ADMIN_ID)
    assert answer["text"] == en("setting-on", key="nsfw")
    assert shown.button_texts == ["enabled: on", "nsfw: on"]
    assert shown.text is not None and "nsfw: on" in shown.text


async def test_chatreset_and_usage(tg: Harness) -> None:
    await say(tg, "/chatset forced_negative <blurry> & ugly", chat_id=GROUP_ID,
              user_id=ADMIN_ID)
    shown = await say(tg, "/chatsettings", chat_id=GROUP_ID, user_id=ADMIN_ID)
    assert shown.text is not None and "forced_negative: <blurry> & ugly" in shown.text

    reply = await say(tg, "/chatset", chat_id=GROUP_ID, user_id=ADMIN_ID)
    assert reply.text is not None and reply.text.startswith(plain("tg-chatset-usage"))
    assert "banned_words: add WORDS" in reply.text
    reply = await say(tg, "/chatset max_steps 9999", chat_id=GROUP_ID, user_id=ADMIN_ID)
    assert reply.text == warning("error-setting-number", key="max_steps", low=1, high=150)

    reply = await say(tg, "/chatreset", chat_id=GROUP_ID)
    assert reply.text == NOT_ADMIN
    assert await chat_settings(tg) != {}
    reply = await say(tg, "/chatreset", chat_id=GROUP_ID, user_id=ADMIN_ID)
    assert reply.text == en("settings-chat-reset")
    assert await chat_settings(tg) == {}


async def test_admin_commands_in_a_private_chat_explain_groups(tg: Harness) -> None:
    reply = await say(tg, "/chatset nsfw on")
    assert reply.text == warning("tg-groups-only")


async def test_demoted_admin_is_refused_once_the_cache_expires(
        tmp_path: Path, fake: FakeTelegram, a1111: FakeA1111) -> None:
    settings = make_settings(tmp_path, fake, a1111, telegram={"admin_cache_seconds": 0})
    async with start_telegram(fake, a1111, settings) as tg:
        reply = await say(tg, "/chatset cooldown 30", chat_id=GROUP_ID, user_id=ADMIN_ID)
        assert reply.text == en("setting-cooldown", value=30)
        fake.set_member(GROUP_ID, ADMIN_ID, "member")
        reply = await say(tg, "/chatset cooldown 0", chat_id=GROUP_ID, user_id=ADMIN_ID)
        assert reply.text == NOT_ADMIN
        assert member_lookups(fake, ADMIN_ID) == 2


async def test_grant_by_owner_by_id_and_by_reply(tg: Harness) -> None:
    reply = await say(tg, "/grant 555 5", user_id=OWNER_ID)
    assert reply.text == en("tg-granted", count=5, user="555", balance=15)

    said = tg.fake.build.text("please, more credits", chat_id=GROUP_ID)
    reply = await say(tg, "/grant 3", chat_id=GROUP_ID, user_id=OWNER_ID, reply_to=said)
    assert reply.text == en("tg-granted", count=3, user="User555", balance=18)
    assert await tg.ledger() == [("initial", 10), ("grant", 5), ("grant", 3)]
    entries = await tg.app.storage.ledger(f"telegram:{USER_ID}", 1)
    assert entries[0].note == f"granted by telegram:{OWNER_ID}"

    reply = await say(tg, "/grant 555 lots", user_id=OWNER_ID)
    assert reply.text == warning("tg-grant-usage")
    reply = await say(tg, "/grant 555 5")
    assert reply.text == NOT_OWNER
    reply = await say(tg, "/grant 555 5", chat_id=GROUP_ID, anonymous_admin=True)
    assert reply.text == NOT_OWNER
    assert await tg.balance() == 18
    await tg.assert_ledger_consistent()


async def test_stats_for_owners_only(tg: Harness) -> None:
    request = tg.send(tg.fake.build.photo(caption="/img2img a cat"))
    await tg.result(request)
    await tg.idle()
    reply = await say(tg, "/stats", user_id=OWNER_ID)
    assert reply.text is not None
    lines = reply.text.splitlines()
    assert lines[0] == en("tg-stats-title")
    assert en("tg-stats-users", users=1, count=9) in lines
    assert en("tg-stats-jobs", jobs="delivered 1") in lines
    assert en("tg-stats-spent", count=1) in lines and en("tg-stats-in-progress", count=0) in lines
    reply = await say(tg, "/stats")
    assert reply.text == NOT_OWNER


async def test_command_menus_per_scope(tg: Harness) -> None:
    await tg.fake.wait_for_call("setMyCommands", count=3)
    private = [c["command"] for c in tg.fake.commands("all_private_chats")]
    groups = [c["command"] for c in tg.fake.commands("all_group_chats")]
    admins = [c["command"] for c in tg.fake.commands("all_chat_administrators")]
    assert {"start", "img2img", "help", "balance", "settings", "set", "reset", "styles",
            "providers", "cancel", "forget"} <= set(private)
    assert "img2img" in groups and "chatset" not in groups
    assert set(groups) < set(admins)
    assert {"chatsettings", "chatset", "chatreset"} <= set(admins)
    assert "grant" not in private + admins  # owners' commands stay out of the menus
