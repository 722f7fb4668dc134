"""The one place an error becomes a Discord reply: ``handle_error``, the tree's error handler.

Commands and buttons raise ``BotError``; the user gets its one
sentence, privately. A public "is thinking…" placeholder left by ``defer()`` is deleted first,
since the first follow-up would otherwise fill it in for everyone to see.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable

import discord
from discord import app_commands

from adapters.discord.interactions import Interaction
from adapters.discord.locale import speak
from adapters.discord.stored import Asked
from bot.errors import BotError, NotAllowed, OptionError
from bot.i18n import Msg

log = logging.getLogger(__name__)

# Set in ``interaction.extras`` while a public deferred placeholder is still blank.
PLACEHOLDER = "img2img_placeholder"
UNKNOWN_INTERACTION = 10062


def mark_placeholder(interaction: Interaction | Asked, blank: bool = True) -> None:
    """Record whether this interaction's public deferred reply is still an empty placeholder."""
    interaction.extras[PLACEHOLDER] = blank


async def send_text(interaction: Interaction, text: str) -> None:
    """Say ``text`` to the interaction's user only, whatever state the response is in."""
    try:
        if not interaction.response.is_done():
            await interaction.response.send_message(text, ephemeral=True)
            return
        if interaction.extras.get(PLACEHOLDER):
            mark_placeholder(interaction, False)
            with contextlib.suppress(discord.NotFound):
                await interaction.delete_original_response()
        await interaction.followup.send(text, ephemeral=True)
    except discord.HTTPException as exc:
        # The interaction expired or the channel is gone: nobody is left to tell.
        log.info("could not send an error reply: %s %s", exc.status, exc.code)


class NotOwner(app_commands.CheckFailure):
    """The owners-only check's refusal (``commands_admin.OwnerCommands``)."""


# What each check of discord.py (or the bot) refuses with.
CHECK_REFUSALS = {app_commands.MissingPermissions: Msg("dc-need-manage-server"),
                  NotOwner: Msg("dc-owners-only")}


def as_bot_error(original: Exception) -> BotError | None:
    """The ``BotError`` an error stands for (unwrapped from discord.py's), or None for a bug."""
    if isinstance(original, BotError):
        return original
    if isinstance(original, app_commands.TransformerError):
        if isinstance(original.__cause__, BotError):  # a transformer's own refusal
            return original.__cause__
        return OptionError(msg=Msg("dc-invalid-value", {"value": repr(original.value)}))
    if isinstance(original, app_commands.CheckFailure):
        return NotAllowed(msg=CHECK_REFUSALS.get(type(original)))
    return None


async def handle_error(interaction: Interaction, error: Exception) -> None:
    """Turn any error of a command, button or modal into one private sentence."""
    original = error.original if isinstance(error, app_commands.CommandInvokeError) else error
    if isinstance(original, discord.NotFound) and original.code == UNKNOWN_INTERACTION:
        log.warning("interaction %s expired before the bot answered", interaction.id)
        return
    known = as_bot_error(original)
    if known is None:
        log.error("unexpected error in interaction %s", interaction.id, exc_info=original)
        known = BotError()
    await send_text(interaction, known.user_message)


async def guarded(interaction: Interaction, work: Awaitable[None]) -> None:
    """Run a button's or modal's work in its reader's language; its errors get the same
    treatment as commands'."""
    try:
        await speak(interaction)
        await work
    except Exception as exc:  # every error becomes a sentence; bugs are logged too
        await handle_error(interaction, exc)
