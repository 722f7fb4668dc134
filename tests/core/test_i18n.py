"""The catalogues: every language has every message, every placeholder, real plural rules."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog

from adapters.telegram.command_list import ADMINS, PRIVATE
from bot.i18n import (
    DEFAULT,
    LOCALES,
    Duration,
    catalogue,
    negotiate,
    number,
    percent,
    placeholders,
    render,
)

ROOT = Path(__file__).resolve().parents[2]
# Literal ids in the code: Msg("id"), t("id"), render("id", ...) and message_id = "id".
ID_IN_CODE = re.compile(r'(?:\bMsg\(|\bt\(|\brender\(|message_id = )"([a-z][a-z0-9-]+)"')


def problems(translated: Catalog, english: Catalog) -> list[str]:
    """What keeps ``translated`` from being complete against the English catalogue."""
    found = []
    for message in english:
        if not message.id:
            continue
        key = message.id[0] if message.pluralizable else message.id
        other = translated.get(key)
        if other is None:
            found.append(f"{key}: missing")
            continue
        wanted = {frozenset(placeholders(s)) for s in
                  (message.string if message.pluralizable else (message.string,))}
        forms = other.string if isinstance(other.string, tuple) else (other.string,)
        if message.pluralizable and len(forms) != translated.num_plurals:
            found.append(f"{key}: {len(forms)} plural forms, the language has "
                         f"{translated.num_plurals}")
        for form in forms:
            if not form:
                found.append(f"{key}: empty")
            elif frozenset(placeholders(form)) not in wanted:
                found.append(f"{key}: placeholders {sorted(placeholders(form))}")
    return found


@pytest.mark.parametrize("locale", LOCALES)
def test_every_catalogue_has_every_message_and_placeholder(locale: str) -> None:
    assert problems(catalogue(locale), catalogue(DEFAULT)) == []


def test_the_check_fails_on_a_missing_message_or_placeholder() -> None:
    english = catalogue(DEFAULT)
    broken = Catalog(locale="de")
    for message in catalogue("de"):
        if message.id and message.id != "error-queue-full":
            broken[message.id] = message
    broken["error-fetch-too-large"].string = "Zu groß."
    found = problems(broken, english)
    assert "error-queue-full: missing" in found
    assert "error-fetch-too-large: placeholders []" in found


def test_every_id_the_code_names_is_in_the_english_catalogue() -> None:
    ids = {match for path in [*ROOT.glob("bot/**/*.py"), *ROOT.glob("adapters/**/*.py")]
           for match in ID_IN_CODE.findall(path.read_text())}
    ids |= {f"menu-{name}" for name in {*PRIVATE, *ADMINS}}
    assert len(ids) > 40
    assert sorted(i for i in ids if catalogue(DEFAULT).get(i) is None) == []


@pytest.mark.parametrize(("locale", "count", "word"), [
    ("ru", 1, "кредит,"), ("ru", 3, "кредита"), ("ru", 5, "кредитов"), ("ru", 21, "кредит,"),
    ("uk", 2, "кредити"), ("uk", 11, "кредитів"), ("en", 1, "credit and"),
    ("de", 2, "Credits"), ("es", 1, "crédito y")])
def test_plural_rules_follow_the_language(locale: str, count: int, word: str) -> None:
    assert word in render("error-insufficient-credits", locale, count=count, balance=0)


def test_numbers_follow_the_locale_and_unknown_languages_fall_back_to_english() -> None:
    assert negotiate("pt-BR") == "pt_BR" and negotiate("pt") == "pt_BR"
    assert negotiate("ru-RU") == "ru" and negotiate("xx") is None
    assert render("error-queue-full", "xx") == render("error-queue-full", DEFAULT)
    assert number(0.65, "de") == "0,65" and number(0.65, "en") == "0.65"
    assert percent(0.42, "de") == "42\N{NO-BREAK SPACE}%" and percent(0.42, "en") == "42%"


def test_durations_are_worded_for_the_reader_and_never_shorter_than_they_are() -> None:
    assert render("status-eta", "en", duration=Duration(12)) == "about 12 seconds left"
    assert render("status-eta", "ru", duration=Duration(12)) == "ещё примерно 12 секунд"
    # 150 s is told as 3 minutes, not 2: a user who waits that long is not refused again.
    assert render("error-cooldown", "de", duration=Duration(150)) == (
        "Bitte warte 3 Minuten bis zum nächsten Bild in diesem Chat.")
    assert "59 seconds" in render("error-cooldown", "en", duration=Duration(59))
