"""The /set and /chatset keys: their metadata, and one setter per field type."""

from __future__ import annotations

import pytest

from bot.errors import OptionError
from bot.i18n import DEFAULT, catalogue
from bot.setting_fields import CHAT_FIELDS, USER_FIELDS, Kind, find, set_value, value_names
from tests.texts import en

FIELDS = (*CHAT_FIELDS, *USER_FIELDS)


def test_every_field_names_messages_of_the_english_catalogue() -> None:
    english = catalogue(DEFAULT)
    for field in FIELDS:
        for msg_id in (field.done, field.done_off, field.help):
            assert not msg_id or english.get(msg_id) is not None, (field.key, msg_id)
        assert field.help_text()


@pytest.mark.parametrize(("key", "raw", "value", "text"), [
    ("nsfw", "yes", True, en("setting-on", key="nsfw")),
    ("max_size", "off", None, en("setting-off", key="max_size")),
    ("max_images", "2", 2, en("setting-number", key="max_images", value=2)),
    ("cooldown", "off", 0, en("setting-cooldown", value=0)),
    ("daily_limit", "off", 0, en("setting-daily-limit-off")),
    ("styles", "anime, ink", ["anime", "ink"], en("setting-allowed", key="styles",
                                                  names="anime, ink")),
    ("providers", "all", [], en("setting-allowed-all", key="providers")),
    ("lock", "--ar", ["aspect", "steps"], en("setting-locked", key="aspect")),
    ("unlock", "steps", [], en("setting-unlocked", key="steps")),
    ("banned_words", "add Cat dog", ["x", "cat", "dog"], en("setting-banned-words", count=3)),
    ("forced_negative", "  blurry   text ", "blurry text",
     en("setting-forced-negative", text="blurry text")),
    ("count", "3", 3, en("setting-chat-default", key="samples", value=3)),
    ("language", "pt-BR", "pt_BR", "Este chat agora usa Português (Brasil) por padrão."),
])
def test_one_setter_per_type_parses_and_confirms(key: str, raw: str, value: object,
                                                 text: str) -> None:
    field = find(CHAT_FIELDS, key)
    assert field is not None
    current = {"lock": ["steps"], "unlock": ["steps"], "banned_words": ["x"]}.get(key)
    got, note = set_value(field, raw, current)
    assert got == value
    if key != "language":
        assert note.render("en") == text
    else:
        assert note.locale == "pt_BR"


@pytest.mark.parametrize(("key", "raw", "msg_id"), [
    ("enabled", "maybe", "error-on-off"), ("max_steps", "151", "error-setting-number"),
    ("lock", "seed", "error-lock"), ("banned_words", "add", "error-banned-words"),
    ("language", "xx", "error-unknown-language")])
def test_bad_values_raise_errors_with_message_ids(key: str, raw: str, msg_id: str) -> None:
    field = find(CHAT_FIELDS, key)
    assert field is not None
    with pytest.raises(OptionError) as caught:
        set_value(field, raw, [])
    assert caught.value.msg is not None and caught.value.msg.id == msg_id


def test_keys_aliases_and_value_names() -> None:
    steps = find(USER_FIELDS, "--steps")
    assert steps is not None and steps.kind is Kind.OPTION and steps.path == ("defaults", "steps")
    assert find(CHAT_FIELDS, "max-steps") is find(CHAT_FIELDS, "max_steps")
    assert find(CHAT_FIELDS, "nothing") is None
    assert [f.key for f in USER_FIELDS][-2:] == ["file", "language"]
    names = {"styles": ["b", "a"], "providers": ["webui"]}
    assert value_names(find(CHAT_FIELDS, "styles"), **names) == ["a", "b"]
    assert value_names(find(USER_FIELDS, "provider"), **names) == ["webui"]
    assert value_names(find(CHAT_FIELDS, "nsfw"), **names) == ["on", "off"]
    assert value_names(find(CHAT_FIELDS, "cooldown"), **names) == []
