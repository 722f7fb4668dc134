"""Buttons that survive restarts: one DynamicItem matched by its custom_id, registered at start.

``img2img:r:<action>:<job>`` (🔁 again, strength − / +, ♻️ use as input) makes a new request
by whoever presses it, charged to them under this server's policy; ``img2img:d:<job>`` (🗑)
deletes a result, for its requester only; ``img2img:c:<job>`` cancels a job, for its requester.

This module imports no other part of the adapter that shows jobs: a rerun is handed to
``requests`` as the ``img2img_rerun`` event, since showing the new job needs these views.
"""

from __future__ import annotations

import re
from typing import Any

import discord

from adapters.discord.interactions import Interaction, first_time
from adapters.discord.replies import guarded, send_text
from bot.i18n import t
from bot.models import UserRef
from bot.rerun import Action
from bot.service import CancelOutcome

Button = discord.ui.Button[discord.ui.View]
DELETE, CANCEL = "d", "c"
RESULT = (*(f"r:{action.value}" for action in Action), DELETE)  # the buttons under a result
# kind (r:<action>, d or c) → label id, emoji, style
LOOK: dict[str, tuple[str, str | None, discord.ButtonStyle]] = {
    "r:again": ("dc-button-again", "🔁", discord.ButtonStyle.secondary),
    "r:weaker": ("dc-button-weaker", None, discord.ButtonStyle.secondary),
    "r:stronger": ("dc-button-stronger", None, discord.ButtonStyle.secondary),
    "r:reuse": ("dc-button-reuse", "♻️", discord.ButtonStyle.secondary),
    DELETE: ("dc-button-delete", "🗑", discord.ButtonStyle.danger),
    CANCEL: ("dc-button-cancel", "✖️", discord.ButtonStyle.secondary),
}


class JobButton(discord.ui.DynamicItem[Button], template=r"img2img:(?P<kind>r:(?:again|weaker|"
                r"stronger|reuse)|d|c):(?P<job>[0-9a-f]{1,64})"):
    """A button under a job's message: a rerun, 🗑 or Cancel, as its kind says."""

    def __init__(self, kind: str, job_id: str) -> None:
        label, emoji, style = LOOK[kind]
        super().__init__(discord.ui.Button(label=t(label), emoji=emoji, style=style,
                                           custom_id=f"img2img:{kind}:{job_id}"))
        self.kind = kind
        self.job_id = job_id

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any],
                             match: re.Match[str], /) -> JobButton:
        return cls(match["kind"], match["job"])

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        if self.kind.startswith("r:"):
            action = Action(self.kind.removeprefix("r:"))
            interaction.client.dispatch("img2img_rerun", interaction, action, self.job_id)
        else:
            await guarded(interaction, self._pressed(interaction))

    async def _pressed(self, interaction: Interaction) -> None:
        if not await first_time(interaction):
            return
        app, requester = interaction.client.app, UserRef("discord", str(interaction.user.id))
        if self.kind == CANCEL:
            outcome = await app.cancel_as(self.job_id, requester)
            if outcome is not CancelOutcome.CANCELLED:
                await send_text(interaction, outcome.answer.render())
                return
        else:  # 🗑: for the requester only (the message's author once the job record is gone)
            owner = await app.job_owner(self.job_id) or _message_author(interaction)
            if owner != requester.key:
                await send_text(interaction, t("dc-only-requester-delete"))
                return
        await interaction.response.defer()  # a cancelled job's message turns into "Cancelled"
        if self.kind == DELETE:
            await interaction.delete_original_response()


def _message_author(interaction: Interaction) -> str | None:
    """Who ran the command that made this message (when the job record is gone)."""
    meta = interaction.message.interaction_metadata if interaction.message else None
    return f"discord:{meta.user.id}" if meta is not None else None


def job_view(job_id: str, *kinds: str) -> discord.ui.View:
    """A job's buttons: ``RESULT`` under a result, ``CANCEL`` under its progress."""
    view = discord.ui.View(timeout=None)
    for kind in kinds:
        view.add_item(JobButton(kind, job_id))
    return view
