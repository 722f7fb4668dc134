"""Every text the Telegram payment commands show, in one place (HTML where it says so)."""

from __future__ import annotations

BUY_HEADER = "<b>Buy credits</b> with Telegram Stars. Pick a pack:"
BUY_FOOTER = "Paying means you accept the /terms; /paysupport helps with a purchase."
PACK_BUTTON = "{title} · {stars} ⭐"
INVOICE_SENT = "Invoice sent."
THANKS = ("✅ Thank you! <b>{credits}</b> credits were added; your balance is <b>{balance}</b>."
          "\nCharge id for support: <code>{charge}</code>")
ALREADY_GRANTED = "This payment was already added to your balance ({balance} credits)."
SUPPORT_HEADER = "<b>Payment support</b>"
TERMS_HEADER = "<b>Terms of sale</b>"
REFUND_USAGE = "Use /refund CHARGE_ID [--force]; the charge id is in the buyer's receipt."
REFUND_REFUSED_BY_TELEGRAM = "Telegram refused the refund: {reason}"
REFUNDED = ("Refunded {stars} ⭐ of charge <code>{charge}</code> ({credits} credits, pack {pack}); "
            "the buyer's balance is now {balance}.")
BUYER_TOLD = "↩️ Your purchase of {credits} credits was refunded ({stars} ⭐). Balance: {balance}."
NOT_RECORDED = ("⚠️ Your payment went through, but the bot could not record it just now. It is "
                "logged; the operator will add your credits. Charge id: <code>{charge}</code>")
