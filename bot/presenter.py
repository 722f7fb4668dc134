"""Platform-neutral wording: status lines, result summaries, help. Adapters format these."""

from __future__ import annotations

from collections.abc import Mapping

from bot.config import StyleConfig
from bot.credits import Credits
from bot.events import Done, Failed, JobEvent, Progress, Queued, Started
from bot.options import SPEC_LIST
from bot.providers.base import Provider

EXAMPLE = "/img2img a watercolor painting --strength 0.6"


def status_line(event: JobEvent) -> str:
    """One line for the progress message."""
    if isinstance(event, Queued):
        if event.position <= 1:
            return "⏳ Next in line…"
        return f"⏳ Queued: position {event.position}"
    if isinstance(event, Started):
        return "🎨 Generating…"
    if isinstance(event, Progress):
        parts = ["🎨 Generating"]
        if event.fraction is not None:
            parts.append(f"{event.fraction:.0%}")
        if event.text:
            parts.append(event.text)
        if event.eta is not None and event.eta >= 1:
            parts.append(f"about {round(event.eta)} s left")
        return " · ".join(parts)
    if isinstance(event, Done):
        return "✅ Done"
    if isinstance(event, Failed):
        return f"⚠️ {failure_text(event)}"
    return ""


def failure_text(failed: Failed) -> str:
    """The error's one sentence, then the refund notice: the only place that notice is written."""
    if not failed.refunded:
        return failed.message
    balance = f" (balance: {failed.balance})" if failed.balance is not None else ""
    return f"{failed.message} Your credits were refunded{balance}."


def result_fields(done: Done, prompt: str) -> list[tuple[str, str]]:
    """The parameters that go with every result, in display order."""
    fields = [("Prompt", prompt), ("Seed", str(done.seed) if done.seed is not None else "n/a"),
              ("Strength", f"{done.params.strength:g}"), ("Provider", done.provider_label)]
    if done.params.style:
        fields.append(("Style", done.params.style))
    fields.append(("Size", f"{done.params.width}x{done.params.height}"))
    fields.append(("Cost", str(done.cost)))
    if done.balance is not None:
        fields.append(("Balance", str(done.balance)))
    return fields


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
        price = f"{cost} credit{'s' if cost != 1 else ''} per image" if cost else "free"
        lines.append(f"{name}: {provider.settings.type}, {price}")
    return lines


def _credits(n: int) -> str:
    return f"your {n} credit{'s were' if n != 1 else ' was'} refunded" if n else \
        "nothing was charged"


def notice_text(kind: str, price: int) -> str:
    """What a user is owed after something happened to their job out of their sight."""
    if kind == "requeued":
        return "⏳ The bot restarted while making your image; it is being made again."
    if kind == "expired":
        return (f"⚠️ Your image was made, but it could not be delivered; {_credits(price)}. "
                "Please send it again.")
    return (f"⚠️ The bot restarted before your image was done; {_credits(price)}. "
            "Please send it again.")


DELIVERY_DEFERRED = ("⏳ Your image is ready, but it could not be sent yet; "
                     "I will keep trying.")
RESTARTING = "⏳ The bot is restarting; your image will be made as soon as it is back."
