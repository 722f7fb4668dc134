"""Every text the Discord payment commands show, in one place."""

from __future__ import annotations

BUY_HEADER = "**Buy credits** (paid through Discord):"
PACK_LINE = "{title}: {credits} credits"
BUY_FOOTER = "Buying means you accept the terms (`/terms`); `/paysupport` helps with a purchase."
THANKS = "✅ Thank you! {credits} credits were added; your balance is {balance}."
SUPPORT_HEADER = "**Payment support**"
TERMS_HEADER = "**Terms of sale**"
