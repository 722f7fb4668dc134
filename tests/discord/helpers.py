"""Acting as Discord users against the adapter, and reading what they see."""

from __future__ import annotations

from typing import Any

from bot.app import App
from bot.models import UserRef
from tests.fakes import discord_payloads as p
from tests.fakes.discord_api import FakeDiscord
from tests.fakes.discord_model import FakeMessage, InteractionRecord
from tests.fakes.discord_world import GENERAL, MEMBER, FakeChannel, FakeUser
from tests.fakes.server import png_bytes

PHOTO = png_bytes((256, 192))


def user_ref(user: FakeUser) -> UserRef:
    return UserRef("discord", str(user.id), user.name)


async def balance(app: App, user: FakeUser = MEMBER) -> int:
    return await app.service.credits.balance(user_ref(user))


async def ledger(app: App, user: FakeUser = MEMBER) -> list[tuple[str, int]]:
    """(kind, amount) of the user's credit movements, oldest first."""
    entries = await app.service.credits.history(user_ref(user), 50)
    return [(e.kind, e.amount) for e in sorted(entries, key=lambda e: e.id)]


async def ask(fake: FakeDiscord, options: dict[str, Any] | None = None, *,
              image: bytes = PHOTO, filename: str = "photo.png", user: FakeUser = MEMBER,
              channel: FakeChannel = GENERAL, timeout: float = 5.0,
              **where: Any) -> InteractionRecord:
    """``/img2img image:<file> prompt:"a cat" ...options`` as ``user`` in ``channel``."""
    att = fake.add_attachment(filename, image, channel_id=channel.id)
    return await fake.inject_interaction(p.slash_command(
        "img2img", {"image": att, "prompt": "a cat", **(options or {})}, user=user,
        channel=channel, **where), timeout=timeout)


def finished(msg: FakeMessage | None) -> FakeMessage | None:
    """The message if it shows a job's end (a result embed or a ⚠️ failure)."""
    if msg is None or msg.deleted or msg.loading:
        return None
    return msg if msg.embeds or msg.content.startswith("⚠️") else None


async def outcome(fake: FakeDiscord, rec: InteractionRecord, timeout: float = 5.0) -> FakeMessage:
    """The interaction's reply once its job ended (result or failure)."""
    return await fake.wait_for(lambda: finished(fake.original(rec.token)), timeout)


async def refusal(fake: FakeDiscord, rec: InteractionRecord, timeout: float = 5.0) -> FakeMessage:
    """The private note a refused request gets (its public placeholder is gone)."""
    return await fake.wait_for(lambda: next(
        (m for m in fake.followups(rec.token) if m.ephemeral), None), timeout)


async def not_charged(app: App, user: FakeUser = MEMBER) -> bool:
    """The user holds their welcome credits and nothing else ever moved."""
    return await balance(app, user) == 20 and await ledger(app, user) == [("initial", 20)]
