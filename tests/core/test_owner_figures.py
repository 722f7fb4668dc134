"""The owners' figures and a place's policy as lines, in the reader's language."""

from __future__ import annotations

from bot.i18n import render, using
from bot.places import PlacePolicy
from bot.policy import ChatPolicy
from bot.stats import Stats
from storage.base import Drift, RevenueDay
from tests.texts import en

SALES = (RevenueDay("2026-12-01", "discord", "USD", 2, 200, 398, 1),
         RevenueDay("2026-12-01", "telegram", "XTR", 1, 100, 1500, 0))


def figures(**changes: object) -> Stats:
    values: dict[str, object] = {
        "users": 1200, "credits_outstanding": 23, "jobs": {"done": 3, "failed": 1},
        "jobs_last_24h": 2, "credits_spent": 7, "in_progress": 1, "providers": ("a1111",),
        "drift": (), "revenue": ()}
    return Stats(**{**values, **changes})  # type: ignore[arg-type]


def test_figures_in_english() -> None:
    assert figures().lines() == [
        en("stats-users", users=1200), en("stats-jobs", jobs="done 3, failed 1"),
        en("stats-jobs-day", jobs=2), en("stats-in-progress", jobs=1),
        en("stats-spent", credits=7), en("stats-outstanding", credits=23),
        en("stats-drift", rows=en("stats-none")), en("stats-sales", line=en("revenue-none"))]
    lines = figures(drift=(Drift("discord:1", 5, 4),), revenue=SALES).lines()
    assert lines[6] == en("stats-drift", rows=1)
    day = {"day": "2026-12-01", "where": en("revenue-skus"), "purchases": 2, "credits": 200}
    assert lines[7:] == [
        en("stats-sales", line=en("revenue-day", **day, money="$3.98")
           + en("revenue-refunded", refunded=1)),
        en("stats-sales", line=en("revenue-day", **{**day, "where": en("revenue-stars"),
                                                   "purchases": 1, "credits": 100},
                                  money="1500 ⭐"))]


def test_figures_in_german_use_the_catalogue_and_german_money() -> None:
    with using("de"):
        lines = figures(revenue=SALES[:1]).lines()
    assert lines[0] == render("stats-users", "de", users=1200)
    assert lines[6] == render("stats-drift", "de", rows=render("stats-none", "de"))
    assert lines[7].startswith(render("stats-sales", "de", line="2026-12-01 Discord-SKUs"))
    assert "3,98\xa0$" in lines[7] and lines[7].endswith(
        render("revenue-refunded", "de", refunded=1))


def test_a_place_says_what_holds_there_and_why() -> None:
    off_here = PlacePolicy(ChatPolicy(), {"enabled": False}, marked_nsfw=False)
    assert off_here.lines("#general") == [
        en("dc-channel-enabled", channel="#general", state=en("dc-off")) + " "
        + en("dc-channel-switch"),
        en("dc-channel-nsfw", channel="#general", state=en("dc-off")) + " "
        + en("dc-channel-unmarked")]
    with using("ru"):
        lines = PlacePolicy(ChatPolicy(), {}, marked_nsfw=True).lines("#art")
    assert lines[0] == render("dc-channel-enabled", "ru", channel="#art",
                              state=render("dc-on", "ru"))
