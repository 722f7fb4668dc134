"""A chat's policy where it applies: one place of a chat (a Discord channel in a server) can
narrow it with its own switches.

A place's switches are the chat settings of ``<platform>:<place id>`` (a thread uses its
parent channel's), written like any chat policy. They only narrow the chat's policy: the
chat's ``enabled`` and ``nsfw`` still hold, and NSFW also needs a place the platform marks
NSFW.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from bot.errors import PolicyError
from bot.i18n import Msg, t
from bot.models import ChatRef
from bot.stored_settings import ChatPolicy, ChatSettings


class Switch(StrEnum):
    """The on/off switches of a chat's policy (Telegram's /chatsettings buttons), which each
    place of the chat can narrow."""

    ENABLED = "enabled"
    NSFW = "nsfw"


SWITCHES = tuple(Switch)


def place_chat(platform: str, place_id: str) -> ChatRef:
    """The settings key under which one place's switches are kept."""
    return ChatRef(platform, str(place_id))


@dataclass(frozen=True, slots=True)
class PlacePolicy:
    """What holds in one place: the chat's policy narrowed by the place's switches."""

    chat: ChatPolicy
    switches: Mapping[str, bool]  # only the switches an admin set on the place
    marked_nsfw: bool  # the platform marks the place NSFW (age-restricted)

    @property
    def enabled(self) -> bool:
        return self.chat.enabled and self.switches.get("enabled", True)

    @property
    def nsfw(self) -> bool:
        return self.chat.nsfw and self.nsfw_place

    @property
    def nsfw_place(self) -> bool:
        """NSFW may be on here as far as the place is concerned (the chat decides the rest)."""
        return self.marked_nsfw and self.switches.get("nsfw", True)

    def admit(self) -> bool:
        """Raise ``PolicyError`` where admins switched the bot off in this place; otherwise
        the request's ``nsfw_channel`` value."""
        if not self.switches.get("enabled", True):
            raise PolicyError(msg=Msg("dc-channel-off"))
        return self.nsfw_place

    def lines(self, place: str) -> list[str]:
        """What holds in the place (``place``: how the platform names it), and why."""
        enabled = t("dc-channel-enabled", channel=place, state=on_off(self.enabled))
        nsfw = t("dc-channel-nsfw", channel=place, state=on_off(self.nsfw))
        enabled += f" {t('dc-channel-switch')}" if "enabled" in self.switches else ""
        nsfw += "" if self.marked_nsfw else f" {t('dc-channel-unmarked')}"
        return [enabled, nsfw]


def on_off(value: bool) -> str:
    return t("dc-on" if value else "dc-off")


def switches_of(settings: ChatSettings) -> dict[str, bool]:
    """The switches set in a place's stored settings."""
    rules = settings.policy
    return {key: bool(getattr(rules, key)) for key in SWITCHES if key in rules.model_fields_set}
