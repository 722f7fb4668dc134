"""Credits: pricing, the welcome grant, daily top-ups, history and owner grants."""

from __future__ import annotations

import datetime as dt

from babel.dates import format_datetime

from bot.config import CreditsConfig
from bot.errors import OptionError
from bot.i18n import Msg, current_locale, number, t
from bot.models import Params, SizeRules, UserRef
from bot.sizing import megapixel_units, output_size
from storage.base import Grants, LedgerEntry, Storage

MAX_GRANT = 1_000_000  # credits one owner grant may give or take
LEDGER_KINDS = ("initial", "daily", "grant", "reserve", "refund")  # with a ledger-* text


def today() -> str:
    return dt.datetime.now(dt.UTC).date().isoformat()


class Credits:
    """Every movement is a ledger row; a balance always equals the sum of its ledger."""

    def __init__(self, config: CreditsConfig, storage: Storage) -> None:
        self.config = config
        self.storage = storage

    def price(self, cost_per_image: int, params: Params) -> int:
        """cost x images x ceil(megapixels of the output); 0 when credits are off."""
        return params.samples * self.per_image(cost_per_image, params.width, params.height)

    def per_image(self, cost_per_image: int, width: int, height: int) -> int:
        """The price of one image of ``width`` x ``height``; 0 when credits are off."""
        if not self.config.enabled:
            return 0
        return cost_per_image * megapixel_units(width, height)

    def quote(self, cost_per_image: int, rules: SizeRules) -> int:
        """What one image at a backend's default size costs, as /help and /providers show it.

        The default size never crosses a price step that the backend's preferred area does
        not (``bot.sizing``), so this is the charge for any input shape.
        """
        return self.per_image(cost_per_image, *output_size((1, 1), rules))

    def grants(self) -> Grants:
        """Today's free credits, given where a job is created (``Storage.create_job``)."""
        return Grants(self.config.initial, self.config.daily_free, today())

    async def ensure(self, user: UserRef) -> int:
        """The balance after the first-use grant and today's top-up."""
        grants = self.grants()
        return await self.storage.ensure_user(user.key, initial=grants.initial,
                                              daily_free=grants.daily_free, today=grants.today)

    async def balance(self, user: UserRef) -> int:
        return await self.ensure(user)

    async def history(self, user: UserRef, limit: int = 5) -> list[LedgerEntry]:
        return await self.storage.ledger(user.key, limit)

    async def grant(self, user: UserRef, amount: int, by: UserRef | None = None) -> int:
        await self.ensure(user)
        note = f"granted by {by.key}" if by else "granted"
        return await self.storage.grant(user.key, amount, note)


def describe_entry(entry: LedgerEntry) -> str:
    """One ledger row as a short line in the reader's language ("Dec 02 14:05 -1 image")."""
    locale = current_locale.get()
    when = format_datetime(dt.datetime.fromtimestamp(entry.created_at, dt.UTC), "MMM dd HH:mm",
                           tzinfo=dt.UTC, locale=locale)
    amount = ("+" if entry.amount >= 0 else "-") + number(abs(entry.amount))
    pack = entry.note.split()[1] if entry.note.startswith("pack ") else ""
    if entry.kind == "purchase" or (entry.kind == "refund" and entry.amount < 0 and pack):
        # The pack, never who refunded it.
        what = t("ledger-purchase" if entry.kind == "purchase" else "ledger-pack-refund",
                 pack=pack)
    elif entry.kind in LEDGER_KINDS:
        what = t(f"ledger-{entry.kind}")
    else:  # a kind newer than this code: its stored name
        what = entry.kind
    return t("ledger-line", when=when, amount=amount, what=what)


def grant_amount(text: str, usage: Msg) -> int:
    """An owner grant's amount: a whole number, nonzero, at most ``MAX_GRANT`` either way
    (``usage`` is the platform's own how-to, for text that is no number at all)."""
    try:
        amount = int(text)
    except ValueError:
        raise OptionError(msg=usage) from None
    if amount == 0 or abs(amount) > MAX_GRANT:
        raise OptionError(msg=Msg("error-grant-amount", {"max": MAX_GRANT}))
    return amount
