"""End-to-end: progress on the deferred reply, cancel, the result within Discord's limits."""

from __future__ import annotations

import gc
import io
import itertools
import logging
import os
from datetime import datetime
from pathlib import Path

import pytest
from discord.ext import commands
from PIL import Image

from bot.app import App
from tests.discord.conftest import bot_config, started
from tests.discord.helpers import ask, balance, ledger, outcome
from tests.fakes.a1111 import FakeA1111
from tests.fakes.discord_api import FakeDiscord
from tests.fakes.discord_model import FakeMessage
from tests.fakes.discord_world import ADMIN, GENERAL, MEMBER, OWNER
from tests.texts import en, head, pattern, warning

GENERATING = f"{en('status-generating-word')} ·"


def contents(msg: FakeMessage) -> list[str]:
    """What the message said over time, the current state last."""
    return [h["content"] for h in msg.history] + [msg.content]


def progress_shown(fake: FakeDiscord, token: str) -> FakeMessage | None:
    msg = fake.original(token)
    return msg if msg is not None and msg.content.startswith(GENERATING) else None


async def test_progress_edits_then_the_result(tmp_path: Path, fake: FakeDiscord,
                                              a1111: FakeA1111) -> None:
    a1111.delay = 1.6  # long enough for an ETA of a second or more
    config = bot_config(tmp_path / "bot.db", fake, a1111, discord={"progress_interval": 0.25})
    async with started(fake, config):
        rec = await ask(fake)
        msg = await outcome(fake, rec)
    said = contents(msg)
    progress = [s for s in said if s.startswith(GENERATING)]
    # A job that starts as it is stored (a slot was free) goes straight to generating.
    assert said[1] in (en("status-next"), en("status-generating")) and progress
    assert any("%" in s for s in progress)
    assert any(pattern("status-eta").search(s) for s in progress)
    cancel = [en("dc-button-cancel")]
    assert all([b["label"] for b in _buttons(h)] == cancel for h in msg.history[1:])
    # Throttled: A1111 is polled every 20 ms, but edits come at most every 0.25 s.
    times = [datetime.fromisoformat(h["edited_timestamp"]) for h in msg.history[2:]]
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(times)]
    assert all(gap >= 0.2 for gap in gaps) and len(msg.history) <= 10
    assert msg.embed is not None and en("dc-button-cancel") not in [b["label"] for b in msg.buttons]


def _buttons(data: dict[str, object]) -> list[dict[str, object]]:
    rows = data.get("components") or []
    assert isinstance(rows, list)
    return [c for row in rows for c in row.get("components", []) if c.get("type") == 2]


async def test_queue_position_is_shown(fake: FakeDiscord, a1111: FakeA1111, app: App,
                                       bot: commands.Bot) -> None:
    a1111.delay = 0.3
    records = [await ask(fake, user=user) for user in (MEMBER, ADMIN, OWNER)]
    results = [await outcome(fake, rec) for rec in records]
    assert all(msg.embed is not None for msg in results)
    # One worker: while one job runs, another waits behind the next in line.
    assert any(en("status-queued", position=2) in contents(msg) for msg in results)


async def test_cancel_button(fake: FakeDiscord, a1111: FakeA1111, app: App,
                             bot: commands.Bot) -> None:
    a1111.delay = 5
    rec = await ask(fake)
    progress = await fake.wait_for(lambda: progress_shown(fake, rec.token))
    other = await fake.press(progress, label=en("dc-button-cancel"), user=ADMIN)
    refused = await fake.wait_for(lambda: fake.original(other.token))
    assert refused.ephemeral
    assert refused.content == en("cancel-not-yours")
    mine = await fake.press(progress, label=en("dc-button-cancel"), user=MEMBER)
    msg = await outcome(fake, rec)
    assert mine.callbacks == [{"type": 6}]
    assert msg.content == warning("failure-refunded-balance", message=en("error-cancelled"),
                                  balance=20)
    assert msg.buttons == []
    assert await ledger(app) == [("initial", 20), ("reserve", -1), ("refund", 1)]


async def test_cancel_after_the_end_says_so(fake: FakeDiscord, a1111: FakeA1111, app: App,
                                            bot: commands.Bot) -> None:
    a1111.delay = 0.4
    rec = await ask(fake)
    progress = await fake.wait_for(lambda: progress_shown(fake, rec.token))
    stale = FakeMessage(progress.id, progress.channel_id, progress.guild_id, progress.author,
                        components=list(progress.components))
    await outcome(fake, rec)
    press = await fake.press(stale, label=en("dc-button-cancel"), user=MEMBER)
    note = await fake.wait_for(lambda: fake.original(press.token))
    assert note.ephemeral and note.content in (en("cancel-finished"), en("cancel-too-late"))
    assert await balance(app) == 19


async def test_deleted_progress_message_does_not_lose_the_result(
        fake: FakeDiscord, a1111: FakeA1111, app: App, bot: commands.Bot,
        caplog: pytest.LogCaptureFixture) -> None:
    a1111.delay = 0.5
    rec = await ask(fake)
    progress = await fake.wait_for(lambda: progress_shown(fake, rec.token))
    await fake.delete_message(progress.id)  # a moderator removes it mid-job
    [result] = await fake.wait_for(lambda: [m for m in fake.followups(rec.token)
                                            if m.embeds and not m.deleted])
    assert result.id != progress.id and len(result.attachments) == 1
    assert await balance(app) == 19
    gc.collect()  # a status task that died of an error says so when it is collected
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


async def test_expired_token_posts_the_result_in_the_channel(
        fake: FakeDiscord, a1111: FakeA1111, app: App, bot: commands.Bot) -> None:
    a1111.delay = 0.5
    rec = await ask(fake)
    await fake.wait_for(lambda: progress_shown(fake, rec.token))
    fake.expire(rec.token)  # as if the job outlived Discord's 15 minutes
    [posted] = await fake.wait_for(lambda: [m for m in fake.channel_messages(GENERAL.id)
                                            if m.interaction_token is None and m.embeds])
    assert posted.content.startswith(f"<@{MEMBER.id}>")
    assert posted.file().startswith(b"\x89PNG")
    assert [b["label"] for b in posted.buttons][-1] == en("dc-button-delete")


async def test_result_larger_than_the_limit_is_shrunk(fake: FakeDiscord, app: App,
                                                      bot: commands.Bot) -> None:
    noise = Image.frombytes("RGB", (512, 512), os.urandom(512 * 512 * 3))
    buf = io.BytesIO()
    noise.save(buf, "PNG")
    limit = 150_000
    rec = await ask(fake, {"provider": "echo"}, image=buf.getvalue(),
                    attachment_size_limit=limit)
    msg = await outcome(fake, rec)
    [attachment] = msg.attachments
    assert len(buf.getvalue()) > 4 * limit >= 4 * attachment.size
    picture = Image.open(io.BytesIO(attachment.data))
    picture.load()
    assert picture.format == "JPEG" and attachment.filename.endswith(".jpg")
    assert msg.embed is not None and msg.embed["image"]["url"].endswith(attachment.filename)


async def test_notices_are_shown(fake: FakeDiscord, a1111: FakeA1111, app: App,
                                 bot: commands.Bot) -> None:
    msg = await outcome(fake, await ask(fake, {"size": "500x500"}))
    notice = f"ℹ️ {en('notice-size-adjusted', width=496, height=496, provider='WebUI')}"
    assert msg.content == notice
    assert any(f"ℹ️ {head('notice-size-adjusted')}" in s for s in contents(msg)[1:-1])


async def test_only_slow_jobs_spend_edits_on_progress(tmp_path: Path, fake: FakeDiscord,
                                                      a1111: FakeA1111) -> None:
    config = bot_config(tmp_path / "bot.db", fake, a1111, discord={"status_after": 0.5})
    async with started(fake, config):
        quick = await outcome(fake, await ask(fake))
        a1111.delay = 1.2
        slow = await outcome(fake, await ask(fake, user=ADMIN))
    assert quick.embed is not None and slow.embed is not None
    assert not any(s.startswith(("⏳", "🎨")) for s in contents(quick))  # deferral, result
    assert any(s.startswith(GENERATING) for s in contents(slow))
