"""End-to-end: command sync only when changed, restart notices, and a graceful stop."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

from discord.ext import commands

from adapters.discord import run_discord
from bot.app import running_app
from bot.config import Config
from bot.presenter import RESTARTING
from tests.dead_process import left_running
from tests.discord.conftest import bot_config, started
from tests.discord.helpers import ask, ledger, outcome, user_ref
from tests.fakes.a1111 import FakeA1111
from tests.fakes.discord_api import FakeDiscord
from tests.fakes.discord_world import GENERAL, GUILD, MEMBER
from tests.texts import en


async def test_commands_sync_only_when_they_changed(fake: FakeDiscord, config: Config) -> None:
    async with started(fake, config):
        pass
    names = {c["name"] for c in fake.commands()}
    assert {"img2img", en("dc-menu-transform"), "credits", "settings",
            "img2img-admin"} <= names
    async with started(fake, config):
        pass
    assert fake.put_count == 1
    guild_config = config.model_copy(deep=True)
    assert guild_config.discord is not None
    guild_config.discord.command_guild = GUILD.id
    async with started(fake, guild_config):
        pass
    async with started(fake, guild_config):
        pass
    assert [put.guild_id for put in fake.command_puts] == [None, GUILD.id]


async def test_commands_an_older_release_registered_are_synced(fake: FakeDiscord,
                                                               config: Config) -> None:
    async with started(fake, config):
        pass
    [first] = fake.command_puts
    changes = ({"description": "Old text"}, {"description_localizations": {}}, None)
    for synced, change in enumerate(changes, start=2):
        older = [dict(c) for c in first.commands]
        img2img = next(c for c in older if c["name"] == "img2img")
        if change is None:  # a command this release no longer has
            older.append({**img2img, "name": "img2img-old"})
        else:
            img2img.update(change)
        fake.seed_commands(older)
        async with started(fake, config):
            pass
        assert fake.put_count == synced and fake.command_puts[-1].commands == first.commands


async def test_restart_notice_for_a_job_a_crash_interrupted(fake: FakeDiscord, config: Config
                                                            ) -> None:
    async with running_app(config, start_workers=False) as app:  # the process that died
        await left_running(app, uuid.uuid4().hex, user_key=user_ref(MEMBER).key,
                           chat_key=f"discord:{GUILD.id}", attempts=2, prompt="a lighthouse",
                           origin={"channel_id": str(GENERAL.id)})
    async with started(fake, config) as (app, _):
        [notice] = await fake.wait_for(lambda: fake.channel_messages(GENERAL.id))
        assert notice.content == (f"<@{MEMBER.id}> "
                                  f"{en('notice-restarted-refunded', count=1)}")
        assert await ledger(app) == [("initial", 20), ("reserve", -1), ("refund", 1)]
    async with started(fake, config):  # told once only
        await asyncio.sleep(0.1)
    assert len(fake.channel_messages(GENERAL.id)) == 1


async def test_graceful_stop_hands_the_job_to_the_next_start(fake: FakeDiscord, a1111: FakeA1111,
                                                             config: Config) -> None:
    a1111.delay = 5
    stop = asyncio.Event()
    async with running_app(config) as app:
        task = asyncio.create_task(run_discord(app, stop))
        rec = await ask(fake)
        await fake.wait_for(lambda: (m := fake.original(rec.token)) and "🎨" in m.content)
        stop.set()
        await asyncio.wait_for(task, 5)
        msg = await fake.wait_for(lambda: (m := fake.original(rec.token)) and
                                  m.content == RESTARTING and m)
        assert msg.buttons == []
    a1111.delay = 0.05
    async with started(fake, config) as (app, _):
        # The token still works: the next start shows the job on the same reply.
        result = await fake.wait_for(lambda: (m := fake.original(rec.token)) and m.embeds and m)
        assert result.file() and not any(m.embeds for m in fake.channel_messages(GENERAL.id)
                                         if m.interaction_token is None)
        assert any(i.startswith("img2img:r:") for i in result.custom_ids), result.custom_ids
        assert await ledger(app) == [("initial", 20), ("reserve", -1)]
    assert len(a1111.img2img_bodies) == 2


async def test_sharded_bot_by_config(fake: FakeDiscord, a1111: FakeA1111, tmp_path: Path) -> None:
    # A sharded bot asks GET /gateway/bot where to connect; the configured URL goes unused.
    config = bot_config(tmp_path / "bot.db", fake, a1111,
                        discord={"sharded": True, "gateway_url": "ws://127.0.0.1:9/unused"})
    async with started(fake, config) as (_, bot):
        assert isinstance(bot, commands.AutoShardedBot)
        assert (await outcome(fake, await ask(fake))).embed is not None
    assert ("GET", "/gateway/bot") in [(c.method, c.path) for c in fake.calls]
