"""Platform-neutral wording: status lines, result summaries, help, rendered for the current
locale (``bot.i18n``). Adapters format these."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from bot.config import StyleConfig
from bot.credits import Credits
from bot.events import Done, Failed, JobEvent, Progress, Queued, Started
from bot.i18n import DEFAULT, Duration, number, percent, render, t
from bot.options import SPEC_LIST
from bot.providers.base import Provider
from bot.stats import Stats

EXAMPLE = "/img2img a watercolor painting --strength 0.6"


def position_worth_showing(shown: int | None, position: int) -> bool:
    """Whether a new queue position is worth an edit: the first, "next", halved or doubled."""
    if shown is None:
        return True
    if position == shown:
        return False
    return position <= 1 or position <= shown // 2 or position >= shown * 2


def status_line(event: JobEvent) -> str:
    """One line for the progress message, in the current locale."""
    if isinstance(event, Queued):
        if event.position <= 1:
            return t("status-next")
        return t("status-queued", position=event.position)
    if isinstance(event, Started):
        return t("status-generating")
    if isinstance(event, Progress):
        parts = [t("status-generating-word")]
        if event.fraction is not None:
            parts.append(percent(event.fraction))
        if event.text:
            parts.append(event.text)
        if event.eta is not None and event.eta >= 1:
            parts.append(t("status-eta", duration=Duration(round(event.eta))))
        return " · ".join(parts)
    if isinstance(event, Done):
        return t("status-done")
    if isinstance(event, Failed):
        return f"⚠️ {failure_text(event)}"
    return ""


def failure_text(failed: Failed) -> str:
    """The error's one sentence, then the refund notice: the only place that notice is written."""
    if not failed.refunded:
        return failed.message
    if failed.balance is None:
        return t("failure-refunded", message=failed.message)
    return t("failure-refunded-balance", message=failed.message, balance=failed.balance)


def result_fields(done: Done, prompt: str) -> list[tuple[str, str]]:
    """The parameters that go with every result, in display order; the prompt comes first."""
    fields = [(t("field-prompt"), prompt),
              (t("field-seed"), str(done.seed) if done.seed is not None else t("field-na")),
              (t("field-strength"), number(done.params.strength)),
              (t("field-provider"), done.provider_label)]
    if done.params.style:
        fields.append((t("field-style"), done.params.style))
    fields.append((t("field-size"), f"{done.params.width}x{done.params.height}"))
    fields.append((t("field-cost"), number(done.cost)))
    if done.balance is not None:
        fields.append((t("field-balance"), number(done.balance)))
    return fields


def result_filename(done: Done, index: int, extension: str, fallback: str) -> str:
    """``img2img-<seed>[-<n>].<ext>``: the seed names the file (``fallback`` when none)."""
    seed = done.seed if done.seed is not None else fallback
    suffix = f"-{index + 1}" if len(done.images) > 1 else ""
    return f"img2img-{seed}{suffix}.{extension}"


@dataclass(frozen=True, slots=True)
class HelpSection:
    """A part of /help: its title, the option that picks from it, its lines."""

    title: str
    flag: str | None
    lines: list[str]


def help_sections(styles: Mapping[str, StyleConfig],
                  provider_lines: list[str]) -> dict[str, HelpSection]:
    """The options, styles and backends, by the command that lists each on its own."""
    return {"options": HelpSection(t("help-options"), None, options_help()),
            "styles": HelpSection(t("help-styles"), "--style NAME", styles_lines(styles)),
            "providers": HelpSection(t("help-providers"), "--provider NAME", provider_lines)}


def options_help() -> list[str]:
    return [f"{' / '.join(spec.flags)}: {spec.help}" for spec in SPEC_LIST]


def styles_lines(styles: Mapping[str, StyleConfig]) -> list[str]:
    return [f"{name}: {style.prompt.replace('{prompt}', '…')}" for name, style in
            sorted(styles.items())]


def providers_lines(providers: Mapping[str, Provider], credits: Credits) -> list[str]:
    """One line per backend with what an image at its default size costs."""
    lines = []
    for name, provider in providers.items():
        cost = credits.quote(provider.settings.cost, provider.rules)
        price = t("provider-price", count=cost) if cost else t("provider-free")
        lines.append(f"{name}: {provider.settings.type}, {price}")
    return lines


def notice_text(kind: str, price: int) -> str:
    """What a user is owed after something happened to their job out of their sight."""
    if kind == "requeued":
        return t("notice-requeued")
    what = "notice-expired" if kind == "expired" else "notice-restarted"
    if price:
        return t(f"{what}-refunded", count=price)
    return t(f"{what}-free")


def delivery_deferred() -> str:
    return t("delivery-deferred")


def restarting() -> str:
    return t("restarting")


# English, for the core's own notices that are not rendered per reader yet.
DELIVERY_DEFERRED = render("delivery-deferred", DEFAULT)
RESTARTING = render("restarting", DEFAULT)


def stats_lines(stats: Stats) -> list[str]:
    """The owners' figures, one line each (job states stay the storage's words)."""
    jobs = ", ".join(f"{status} {number(count)}" for status, count in sorted(stats.jobs.items()))
    return [t("tg-stats-users", users=stats.users, count=stats.credits_outstanding),
            t("tg-stats-jobs", jobs=jobs or t("tg-stats-none")),
            t("tg-stats-last-day", count=stats.jobs_last_24h),
            t("tg-stats-spent", count=stats.credits_spent),
            t("tg-stats-in-progress", count=stats.in_progress),
            t("tg-stats-providers", names=", ".join(stats.providers) or t("tg-stats-none"))]
