"""The settings a user and a chat keep, as pydantic models stored as versioned JSON.

A stored record holds only what someone set (``exclude_unset``), so a key left alone keeps
following the bot's defaults, and a place's switch set to its default still counts as set.
``version`` is the shape of the record: rows written before it existed carry none and have
the same keys, so they read as version 1. A record with nothing set is stored as ``{}``,
which reads the same in every version.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, field_validator

from bot.options import Overrides

VERSION = 1


class Stored(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    @classmethod
    def load(cls, data: Mapping[str, Any]) -> Self:
        """Read a stored record of any version up to this one (unknown keys are dropped)."""
        return cls.model_validate({k: v for k, v in data.items() if k != "version"})

    def dump(self) -> dict[str, Any]:
        """The JSON-friendly record to store."""
        body = self.model_dump(mode="json", exclude_unset=True)
        return {"version": VERSION, **body} if body else {}

    def changed(self, path: tuple[str, ...], value: object) -> Self:
        """A copy with the value at ``path`` (keys of the stored record) replaced; None
        removes it, so that it follows the defaults again."""
        record = self.model_dump(mode="json", exclude_unset=True)
        node = record
        for key in path[:-1]:
            node = node.setdefault(key, {})
        if value is None:
            node.pop(path[-1], None)
        else:
            node[path[-1]] = value
        return self.load(record)

    def read(self, path: tuple[str, ...]) -> object:
        """The value at ``path`` (keys of the stored record)."""
        node: object = self
        for key in path:
            node = getattr(node, key, None)
        return node


class _Defaults(Stored):
    defaults: dict[str, Any] = {}

    @field_validator("defaults", mode="before")
    @classmethod
    def _options(cls, value: Mapping[str, Any]) -> dict[str, Any]:
        # Keys that are no options, or values no longer valid, are dropped.
        return Overrides.from_dict(dict(value)).to_dict()

    @property
    def overrides(self) -> Overrides:
        return Overrides.from_dict(self.defaults)


class Prefs(Stored):
    file: bool = False  # also send the full-resolution file


class UserSettings(_Defaults):
    """A user's own defaults, preferences and language."""

    prefs: Prefs = Prefs()
    language: str | None = None


class ChatPolicy(Stored):
    """A chat's moderation rules (a place of a chat keeps only ``enabled`` and ``nsfw``)."""

    enabled: bool = True
    nsfw: bool = False
    locked: list[str] = []
    max_steps: int | None = None
    max_size: int | None = None
    max_images: int | None = None
    providers: list[str] = []
    styles: list[str] = []
    banned_words: list[str] = []
    forced_negative: str = ""
    cooldown: float = 0
    daily_limit: int = 0


class ChatSettings(_Defaults):
    """A chat's defaults for its members, its policy and its default language."""

    policy: ChatPolicy = ChatPolicy()
    language: str | None = None
