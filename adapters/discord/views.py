"""Buttons that survive restarts: DynamicItems matched by their custom_id, registered at start.

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

from adapters.discord.replies import guarded, send_text
from adapters.discord.state import Interaction, first_time
from bot.i18n import t
from bot.models import UserRef
from bot.rerun import Action
from bot.service import CancelOutcome

Button = discord.ui.Button[discord.ui.View]
JOB = r"(?P<job>[0-9a-f]{1,64})"
RESULT_LOOK: dict[Action, tuple[str, str | None]] = {
    Action.AGAIN: ("dc-button-again", "🔁"),
    Action.WEAKER: ("dc-button-weaker", None),
    Action.STRONGER: ("dc-button-stronger", None),
    Action.REUSE: ("dc-button-reuse", "♻️"),
}


def requester_key(interaction: Interaction) -> str:
    return f"discord:{interaction.user.id}"


class ResultButton(discord.ui.DynamicItem[Button],
                   template=r"img2img:r:(?P<action>again|weaker|stronger|reuse):" + JOB):
    """A result button that runs the request again, changed as its action says."""

    def __init__(self, action: Action, job_id: str) -> None:
        label, emoji = RESULT_LOOK[action]
        super().__init__(discord.ui.Button(label=t(label), emoji=emoji,
                                           style=discord.ButtonStyle.secondary,
                                           custom_id=f"img2img:r:{action.value}:{job_id}"))
        self.action = action
        self.job_id = job_id

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any],
                             match: re.Match[str], /) -> ResultButton:
        return cls(Action(match["action"]), match["job"])

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        interaction.client.dispatch("img2img_rerun", interaction, self.action, self.job_id)


class DeleteButton(discord.ui.DynamicItem[Button], template=r"img2img:d:" + JOB):
    """🗑: deletes the result message; anyone but the requester is refused privately."""

    def __init__(self, job_id: str) -> None:
        super().__init__(discord.ui.Button(label=t("dc-button-delete"), emoji="🗑",
                                           style=discord.ButtonStyle.danger,
                                           custom_id=f"img2img:d:{job_id}"))
        self.job_id = job_id

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any],
                             match: re.Match[str], /) -> DeleteButton:
        return cls(match["job"])

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        await guarded(interaction, self._delete(interaction))

    async def _delete(self, interaction: Interaction) -> None:
        if not await first_time(interaction):
            return
        owner = await interaction.client.app.job_owner(self.job_id) or _message_author(interaction)
        if owner != requester_key(interaction):
            await send_text(interaction, t("dc-only-requester-delete"))
            return
        await interaction.response.defer()
        await interaction.delete_original_response()


def _message_author(interaction: Interaction) -> str | None:
    """Who ran the command that made this message (when the job record is gone)."""
    meta = interaction.message.interaction_metadata if interaction.message else None
    return f"discord:{meta.user.id}" if meta is not None else None


class CancelButton(discord.ui.DynamicItem[Button], template=r"img2img:c:" + JOB):
    """Cancels a queued or running job; its own message then says so."""

    def __init__(self, job_id: str) -> None:
        super().__init__(discord.ui.Button(label=t("dc-button-cancel"), emoji="✖️",
                                           style=discord.ButtonStyle.secondary,
                                           custom_id=f"img2img:c:{job_id}"))
        self.job_id = job_id

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any],
                             match: re.Match[str], /) -> CancelButton:
        return cls(match["job"])

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        await guarded(interaction, self._cancel(interaction))

    async def _cancel(self, interaction: Interaction) -> None:
        if not await first_time(interaction):
            return
        outcome = await interaction.client.app.cancel_as(self.job_id, UserRef.parse(
            requester_key(interaction)))
        if outcome is CancelOutcome.NOT_YOURS:
            await send_text(interaction, t("dc-only-requester-cancel"))
        elif outcome is CancelOutcome.CANCELLED:
            await interaction.response.defer()  # the job's message turns into "Cancelled"
        else:
            await send_text(interaction, t("dc-not-in-progress"))


DYNAMIC_ITEMS = (ResultButton, DeleteButton, CancelButton)


def result_view(job_id: str) -> discord.ui.View:
    """The buttons under a result."""
    view = discord.ui.View(timeout=None)
    for action in RESULT_LOOK:
        view.add_item(ResultButton(action, job_id))
    view.add_item(DeleteButton(job_id))
    return view


def cancel_view(job_id: str) -> discord.ui.View:
    """The Cancel button under a job's progress."""
    view = discord.ui.View(timeout=None)
    view.add_item(CancelButton(job_id))
    return view
