"""Stored settings carry a version; rows written before it read the same (every backend)."""

from __future__ import annotations

from bot.models import ChatRef, UserRef
from bot.places import switches_of
from bot.preferences import Preferences
from bot.stored_settings import VERSION
from storage import Storage
from tests.texts import en

GROUP = ChatRef("telegram", "-5")
USER = UserRef("telegram", "1")


async def test_an_unversioned_chat_row_reads_and_is_rewritten_with_the_version(
        store: Storage) -> None:
    await store.set_chat_settings(GROUP.key, {"defaults": {"steps": 20, "bogus": 1},
                                              "policy": {"nsfw": True, "locked": ["steps"],
                                                         "gone_key": 3}})
    prefs = Preferences(store)
    policy = await prefs.chat_policy(GROUP)
    assert policy.nsfw and policy.locked == ["steps"] and policy.enabled
    assert (await prefs.chat(GROUP)).overrides.steps == 20

    note = await prefs.set_chat(GROUP, "max_steps", "30")
    assert note.render("en") == en("setting-number", key="max_steps", value=30)
    assert await store.chat_settings(GROUP.key) == {
        "version": VERSION, "defaults": {"steps": 20},
        "policy": {"nsfw": True, "locked": ["steps"], "max_steps": 30}}


async def test_an_unversioned_user_row_reads_and_reset_stores_nothing(store: Storage) -> None:
    await store.set_user_settings(USER.key, {"defaults": {"strength": 0.3, "steps": "lots"},
                                             "prefs": {"file": True}, "language": "de"})
    prefs = Preferences(store)
    assert (await prefs.user_defaults(USER)).strength == 0.3  # the invalid steps is dropped
    assert await prefs.user_pref(USER, "file") and await prefs.language(USER) == "de"
    await prefs.set_user(USER, "denoise", "40%")
    assert (await store.user_settings(USER.key))["version"] == VERSION
    assert (await store.user_settings(USER.key))["defaults"] == {"strength": 0.4}
    await prefs.reset_user(USER)
    assert await store.user_settings(USER.key) == {}


async def test_a_place_switch_set_to_its_default_still_counts_as_set(store: Storage) -> None:
    prefs = Preferences(store)
    place = ChatRef("discord", "77")
    await prefs.set_chat(place, "enabled", "on")
    await prefs.set_chat(place, "nsfw", "off")
    assert switches_of(await prefs.chat(place)) == {"enabled": True, "nsfw": False}
