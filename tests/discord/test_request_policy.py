"""End-to-end: a server's policy (set by its admins) applied to /img2img requests."""

from __future__ import annotations

from typing import Any

from discord.ext import commands

from bot.app import App
from bot.models import ChatRef
from bot.places import place_chat
from tests.discord.helpers import ask, not_charged, outcome, refusal
from tests.fakes.a1111 import FakeA1111
from tests.fakes.discord_api import FakeDiscord
from tests.fakes.discord_model import FakeMessage
from tests.fakes.discord_world import GENERAL, GUILD, NSFW
from tests.texts import en

SERVER = ChatRef("discord", str(GUILD.id))


async def resolved_params(app: App, msg: FakeMessage) -> dict[str, Any]:
    """The parameters the core settled on for the job behind a result message."""
    job_id = next(c.rsplit(":", 1)[1] for c in msg.custom_ids if c.startswith("img2img:d:"))
    job = await app.storage.get_job(job_id)
    assert job is not None
    resolved = job.params["resolved"]
    assert isinstance(resolved, dict)
    return resolved


async def test_banned_word_is_refused(fake: FakeDiscord, a1111: FakeA1111, app: App,
                                      bot: commands.Bot) -> None:
    await app.preferences.set_chat(SERVER, "banned_words", "add cat")
    note = await refusal(fake, await ask(fake, {"prompt": "a Cat on a sofa"}))
    assert note.content == en("error-banned-word")
    assert a1111.img2img_bodies == [] and await not_charged(app)


async def test_locked_field_wins_over_the_request(fake: FakeDiscord, a1111: FakeA1111, app: App,
                                                  bot: commands.Bot) -> None:
    await app.preferences.set_chat(SERVER, "steps", "20")
    await app.preferences.set_chat(SERVER, "lock", "steps")
    msg = await outcome(fake, await ask(fake, {"steps": 40}))
    [body] = a1111.img2img_bodies
    assert body["steps"] == 20
    assert msg.content == f"ℹ️ {en('notice-locked', name='steps', value=20)}"


async def test_nsfw_only_in_channels_discord_marks_nsfw(fake: FakeDiscord, app: App,
                                                        bot: commands.Bot) -> None:
    await app.preferences.set_chat(SERVER, "nsfw", "on")
    general = await outcome(fake, await ask(fake, channel=GENERAL))
    marked = await outcome(fake, await ask(fake, channel=NSFW))
    assert (await resolved_params(app, general))["nsfw_allowed"] is False
    assert (await resolved_params(app, marked))["nsfw_allowed"] is True


async def test_nsfw_stays_off_unless_the_server_allows_it(fake: FakeDiscord, app: App,
                                                          bot: commands.Bot) -> None:
    marked = await outcome(fake, await ask(fake, channel=NSFW))
    assert (await resolved_params(app, marked))["nsfw_allowed"] is False
    await app.preferences.set_chat(SERVER, "nsfw", "on")
    this_channel = place_chat("discord", str(NSFW.id))
    await app.preferences.set_chat(this_channel, "nsfw", "off")
    again = await outcome(fake, await ask(fake, channel=NSFW))
    assert (await resolved_params(app, again))["nsfw_allowed"] is False


async def test_bot_switched_off_in_a_channel(fake: FakeDiscord, a1111: FakeA1111, app: App,
                                             bot: commands.Bot) -> None:
    await app.preferences.set_chat(place_chat("discord", str(GENERAL.id)), "enabled", "off")
    note = await refusal(fake, await ask(fake, channel=GENERAL))
    assert note.content == en("dc-channel-off")
    assert fake.cdn_gets == [] and a1111.img2img_bodies == [] and await not_charged(app)
    assert (await outcome(fake, await ask(fake, channel=NSFW))).embed is not None
