"""Which language to answer in, and the command names and descriptions Discord shows per locale.

A reply's language is the user's ``/settings set language`` choice, else the server's
(``/img2img-admin set language``), else the client's ``interaction.locale``, else English
(``App.locale_for``). Discord has no Persian client locale, so Persian readers choose it with
``/settings set language fa``; their command menu stays English.

The locale is set in ``bot.i18n.current_locale`` once per interaction, in the check that
discord.py runs in the same task as the command, button or modal callback, so everything
rendered there (errors included) follows it.
"""

from __future__ import annotations

from typing import Any

import discord
from discord import app_commands
from discord.app_commands import locale_str

from adapters.discord.interactions import Interaction, chat_of, user_of
from bot.i18n import DEFAULT, current_locale, negotiate, render


def text(msg_id: str, /, **extras: Any) -> locale_str:
    """A command name, description or choice: English for Discord, the id for the translator."""
    english = render(msg_id, DEFAULT)
    prefix = extras.get("prefix")
    return locale_str(f"{prefix}: {english}"[:100] if prefix else english, id=msg_id, **extras)


def shipped(locale: discord.Locale) -> str | None:
    """The catalogue for a Discord client locale (es-ES and es-419 are both ``es``)."""
    found = negotiate(locale.value)
    return None if found in (None, DEFAULT) else found


async def speak(interaction: Interaction) -> bool:
    """Render the rest of this interaction's task in its reader's language; always True."""
    if interaction.type is discord.InteractionType.autocomplete:  # due in 3 s: no lookups
        current_locale.set(negotiate(interaction.locale.value) or DEFAULT)
        return True
    current_locale.set(await interaction.client.app.locale_for(
        user_of(interaction), chat_of(interaction), interaction.locale.value))
    return True


class CatalogueTranslator(app_commands.Translator):
    """Fills name_localizations, description_localizations and choice names from the catalogue.

    Strings made with ``text(id)`` are translated; others (command names, which users type and
    share, and plain strings) are sent as they are.
    """

    async def translate(self, string: locale_str, locale: discord.Locale,
                        context: app_commands.TranslationContextTypes) -> str | None:
        msg_id = string.extras.get("id")
        target = shipped(locale)
        if msg_id is None or target is None:
            return None
        translated = render(msg_id, target)
        prefix = string.extras.get("prefix")
        if context.location is app_commands.TranslationContextLocation.command_name:
            translated = translated[:32]
        return f"{prefix}: {translated}"[:100] if prefix else translated[:100]
