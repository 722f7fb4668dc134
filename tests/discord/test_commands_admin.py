"""End-to-end: /img2img-admin (server policy, channel switches), /grant and /stats."""

from __future__ import annotations

import asyncio
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from adapters.discord.policy import channel_allows
from bot.app import App
from tests.discord.helpers import ask, ledger, outcome, refusal, user_ref
from tests.fakes import discord_payloads as p
from tests.fakes.discord_api import FakeDiscord
from tests.fakes.discord_model import FakeMessage
from tests.fakes.discord_world import (
    ADMIN,
    GENERAL,
    GUILD,
    MEMBER,
    NSFW,
    OWNER,
    FakeChannel,
    FakeUser,
)
from tests.texts import en

SERVER = f"discord:{GUILD.id}"
NEEDS_MANAGE = en("dc-need-manage-server")
OWNERS_ONLY = en("dc-owners-only")


async def reply(fake: FakeDiscord, command: str, options: dict[str, Any] | None = None, *,
                user: FakeUser = ADMIN, channel: FakeChannel = GENERAL) -> FakeMessage:
    """Run ``/command`` as ``user`` in ``channel`` and return the bot's answer."""
    rec = await fake.inject_interaction(p.slash_command(command, options, user=user,
                                                        channel=channel))
    return await fake.wait_for(lambda: fake.original(rec.token))


def add_probe(bot: commands.Bot, app: App) -> None:
    """A stand-in for the request flow: what ``channel_allows`` tells it, as a reply."""

    @app_commands.command(name="probe", description="channel_allows")
    async def probe(interaction: discord.Interaction) -> None:
        nsfw = await channel_allows(app, interaction)
        await interaction.response.send_message(f"allowed, nsfw_channel={nsfw}")

    bot.tree.add_command(probe)


async def test_admin_group_is_registered_for_manage_server_only(
        fake: FakeDiscord, bot: commands.Bot) -> None:
    registered = {c["name"]: c for c in fake.commands()}
    admin = registered["img2img-admin"]
    assert admin["default_member_permissions"] == str(discord.Permissions(manage_guild=True).value)
    assert admin["dm_permission"] is False
    assert {o["name"] for o in admin["options"]} == {"show", "set", "reset", "channel"}
    for name in ("grant", "stats", "credits", "settings"):
        assert registered[name]["default_member_permissions"] is None


async def test_set_needs_manage_server_checked_by_the_bot(fake: FakeDiscord, app: App,
                                                          bot: commands.Bot) -> None:
    refused = await reply(fake, "img2img-admin set", {"key": "max_steps", "value": "30"},
                          user=MEMBER)
    assert refused.ephemeral and refused.content == NEEDS_MANAGE
    assert await app.storage.chat_settings(SERVER) == {}

    done = await reply(fake, "img2img-admin set", {"key": "max_steps", "value": "30"})
    assert done.ephemeral and done.content == en("setting-number", key="max_steps", value=30)
    owner = await reply(fake, "img2img-admin set", {"key": "steps", "value": "20"}, user=OWNER)
    assert owner.content == en("setting-chat-default", key="steps", value=20)
    assert await app.storage.chat_settings(SERVER) == {"version": 1, "defaults": {"steps": 20},
                                                       "policy": {"max_steps": 30}}
    bad = await reply(fake, "img2img-admin set", {"key": "max_steps", "value": "lots"})
    assert bad.content == en("error-setting-number", key="max_steps", low=1, high=150)

    for command in ("img2img-admin show", "img2img-admin reset"):
        assert (await reply(fake, command, user=MEMBER)).content == NEEDS_MANAGE


async def test_show_and_reset(fake: FakeDiscord, app: App, bot: commands.Bot) -> None:
    await reply(fake, "img2img-admin set", {"key": "lock", "value": "strength"})
    nsfw = await reply(fake, "img2img-admin set", {"key": "nsfw", "value": "on"})
    assert nsfw.content == f"{en('setting-on', key='nsfw')} {en('dc-nsfw-where')}"
    shown = await reply(fake, "img2img-admin show")
    assert shown.ephemeral
    assert shown.content.startswith(f"{en('dc-server-settings')}\n• enabled: on\n")
    lines = shown.content.splitlines()
    assert "• locked: strength" in lines and "• nsfw: on" in lines
    assert lines[-2:] == [f"• <#{GENERAL.id}> enabled: on",
                          f"• <#{GENERAL.id}> nsfw: off {en('dc-channel-unmarked')}"]
    in_nsfw = await reply(fake, "img2img-admin show", channel=NSFW)
    assert in_nsfw.content.splitlines()[-1] == f"• <#{NSFW.id}> nsfw: on"

    reset = await reply(fake, "img2img-admin reset")
    assert reset.content == en("dc-server-reset")
    assert await app.storage.chat_settings(SERVER) == {}


async def test_setting_keys_autocomplete(fake: FakeDiscord, bot: commands.Bot) -> None:
    rec = await fake.inject_interaction(p.autocomplete(
        "img2img-admin set", focused="key", value="max", user=ADMIN))
    choices = await fake.wait_for(lambda: fake.choices(rec.token))
    assert [c["value"] for c in choices] == ["max_steps", "max_size", "max_images"]
    rec = await fake.inject_interaction(p.autocomplete(
        "img2img-admin set", {"key": "lock"}, focused="value", value="st", user=ADMIN))
    choices = await fake.wait_for(lambda: fake.choices(rec.token))
    assert [c["value"] for c in choices] == ["strength", "steps", "style"]


async def test_banned_word_then_refused_in_a_request(fake: FakeDiscord, app: App,
                                                      bot: commands.Bot) -> None:
    done = await reply(fake, "img2img-admin set", {"key": "banned_words", "value": "add dragon"})
    assert done.content == en("setting-banned-words", count=1)
    asked = await ask(fake, {"prompt": "a red Dragon over hills"}, user=MEMBER)
    note = await refusal(fake, asked)
    assert note.content == en("error-banned-word")
    assert await ledger(app) == []  # refused before anything was charged
    fine = await ask(fake, {"prompt": "a red kite over hills"}, user=MEMBER)
    assert (await outcome(fake, fine)).embeds


async def test_channel_nsfw_only_where_discord_marks_it(fake: FakeDiscord, app: App,
                                                        bot: commands.Bot) -> None:
    add_probe(bot, app)
    refused = await reply(fake, "img2img-admin channel", {"nsfw": "on"}, channel=GENERAL)
    assert refused.ephemeral and refused.content == en("dc-nsfw-unmarked")
    assert await app.storage.chat_settings(f"discord:{GENERAL.id}") == {}

    await reply(fake, "img2img-admin set", {"key": "nsfw", "value": "on"})
    accepted = await reply(fake, "img2img-admin channel", {"nsfw": "on"}, channel=NSFW)
    assert accepted.content == f"• <#{NSFW.id}> enabled: on\n• <#{NSFW.id}> nsfw: on"
    settings = await app.storage.chat_settings(f"discord:{NSFW.id}")
    assert settings["policy"] == {"nsfw": True}
    assert (await reply(fake, "probe", channel=NSFW)).content == "allowed, nsfw_channel=True"
    assert (await reply(fake, "probe", channel=GENERAL)).content == "allowed, nsfw_channel=False"

    off = await reply(fake, "img2img-admin channel", {"nsfw": "off"}, channel=NSFW)
    assert off.content.endswith(f"<#{NSFW.id}> nsfw: off")
    assert (await reply(fake, "probe", channel=NSFW)).content == "allowed, nsfw_channel=False"
    denied = await reply(fake, "img2img-admin channel", {"nsfw": "on"}, user=MEMBER,
                         channel=NSFW)
    assert denied.content == NEEDS_MANAGE


async def test_channel_switched_off_refuses_requests_there(fake: FakeDiscord, app: App,
                                                           bot: commands.Bot) -> None:
    add_probe(bot, app)
    off = await reply(fake, "img2img-admin channel", {"enabled": "off"}, channel=GENERAL)
    assert off.content.startswith(f"• <#{GENERAL.id}> enabled: off {en('dc-channel-switch')}")
    asked = await ask(fake, user=MEMBER, channel=GENERAL)
    note = await refusal(fake, asked)
    assert note.content == en("dc-channel-off")
    assert await ledger(app) == []  # refused before anything was charged
    elsewhere = await reply(fake, "probe", user=MEMBER, channel=NSFW)
    assert elsewhere.content == "allowed, nsfw_channel=True"
    dm = await fake.inject_interaction(p.slash_command("probe", user=MEMBER, guild=None))
    assert (await fake.wait_for(lambda: fake.original(dm.token))).content == \
        "allowed, nsfw_channel=False"
    await reply(fake, "img2img-admin channel", {"enabled": "on"}, channel=GENERAL)
    assert (await reply(fake, "probe", channel=GENERAL)).content.startswith("allowed")


async def test_grant_by_an_owner_only(fake: FakeDiscord, app: App, bot: commands.Bot) -> None:
    refused = await reply(fake, "grant", {"user": MEMBER, "amount": 50}, user=ADMIN)
    assert refused.ephemeral and refused.content == OWNERS_ONLY
    member = user_ref(MEMBER)
    assert await app.service.credits.history(member) == []

    granted = await reply(fake, "grant", {"user": MEMBER, "amount": 50}, user=OWNER)
    assert granted.content == en("dc-granted", count=50, user=f"<@{MEMBER.id}>", balance=70)
    [grant, welcome] = await app.service.credits.history(member)
    assert (grant.kind, grant.amount, grant.note) == ("grant", 50, f"granted by discord:{OWNER.id}")
    assert welcome.kind == "initial"
    taken = await reply(fake, "grant", {"user": MEMBER, "amount": -5}, user=OWNER)
    assert taken.content == en("dc-took", count=5, user=f"<@{MEMBER.id}>", balance=65)

    payload = p.slash_command("grant", {"user": MEMBER, "amount": 7}, user=OWNER)
    once = await fake.inject_interaction(payload)
    await fake.wait_for(lambda: fake.original(once.token))
    assert once.callbacks[0]["data"]["allowed_mentions"] == {"parse": []}  # named, not pinged
    await fake.inject_interaction(payload)  # Discord delivers it again
    await asyncio.sleep(0.2)
    assert await ledger(app, MEMBER) == [("initial", 20), ("grant", 50), ("grant", -5),
                                         ("grant", 7)]
    assert len(once.callbacks) == 1


async def test_stats_by_an_owner_only(fake: FakeDiscord, app: App, bot: commands.Bot) -> None:
    assert (await reply(fake, "stats", user=MEMBER)).content == OWNERS_ONLY
    await app.service.credits.grant(user_ref(MEMBER), 3)
    stats = await reply(fake, "stats", user=OWNER)
    assert stats.ephemeral
    none = en("stats-none")
    assert stats.content.splitlines() == [en("dc-stats"), *(f"• {line}" for line in (
        en("stats-users", users=1), en("stats-jobs", jobs=none), en("stats-jobs-day", jobs=0),
        en("stats-in-progress", jobs=0), en("stats-spent", credits=0),
        en("stats-outstanding", credits=23), en("stats-drift", rows=none),
        en("stats-sales", line=en("revenue-none"))))]
