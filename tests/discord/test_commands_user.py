"""End-to-end: /credits, /settings, /styles, /providers, /cancel, /forget on the fake Discord."""

from __future__ import annotations

from typing import Any

from discord.ext import commands

from bot.app import App
from bot.events import Done, Failed
from bot.jobs import GenerationRequest
from bot.models import ChatRef, UserRef
from tests.discord.commands_harness import *  # noqa: F403 (temporary fixtures)
from tests.fakes import discord_payloads as p
from tests.fakes.a1111 import FakeA1111
from tests.fakes.discord_api import FakeDiscord
from tests.fakes.discord_model import FakeMessage
from tests.fakes.discord_world import GENERAL, GUILD, MEMBER, FakeUser
from tests.fakes.server import png_bytes


def ref(user: FakeUser) -> UserRef:
    return UserRef("discord", str(user.id), user.name)


async def reply(fake: FakeDiscord, command: str, options: dict[str, Any] | None = None,
                user: FakeUser = MEMBER) -> FakeMessage:
    """Run ``/command`` as ``user`` and return the bot's answer."""
    rec = await fake.inject_interaction(p.slash_command(command, options, user=user))
    return await fake.wait_for(lambda: fake.original(rec.token))


async def submit(app: App, prompt: str = "a watercolor", user: FakeUser = MEMBER) -> Any:
    chat = ChatRef("discord", str(GUILD.id))
    return await app.service.submit(GenerationRequest(ref(user), chat, png_bytes(), prompt,
                                                      origin={"channel_id": GENERAL.id}))


async def test_credits_shows_the_balance_and_ledger_privately(
        fake: FakeDiscord, app: App, bot: commands.Bot) -> None:
    first = await reply(fake, "credits")
    assert first.ephemeral
    assert first.content.startswith("**Balance: 20 credits**\nRecent:\n• ")
    assert first.content.endswith("+20 welcome")
    await app.service.credits.grant(ref(MEMBER), 5)
    second = await reply(fake, "credits")
    assert "**Balance: 25 credits**" in second.content
    assert [line.split()[-2:] for line in second.content.splitlines()[2:]] == [
        ["+5", "grant"], ["+20", "welcome"]]


async def test_settings_set_show_and_reset(fake: FakeDiscord, app: App,
                                           bot: commands.Bot) -> None:
    done = await reply(fake, "settings set", {"key": "strength", "value": "0.4"})
    assert done.ephemeral and done.content == "Your default strength is now 0.4."
    await reply(fake, "settings set", {"key": "file", "value": "on"})
    assert await app.storage.user_settings(ref(MEMBER).key) == {
        "defaults": {"strength": 0.4}, "prefs": {"file": True}}

    shown = await reply(fake, "settings show")
    assert shown.content == "Your defaults:\n• strength: 0.4\n• file: on"

    refused = await reply(fake, "settings set", {"key": "steps", "value": "900"})
    assert refused.ephemeral and refused.content == \
        "--steps must be a whole number from 1 to 150."
    one = await reply(fake, "settings reset", {"key": "strength"})
    assert one.content == "Your strength is back to the default."
    assert await app.storage.user_settings(ref(MEMBER).key) == {"defaults": {},
                                                                "prefs": {"file": True}}
    every = await reply(fake, "settings reset")
    assert every.content == "Your settings are back to the defaults."
    assert await app.storage.user_settings(ref(MEMBER).key) == {}


async def test_settings_keys_are_choices_and_values_autocomplete(
        fake: FakeDiscord, bot: commands.Bot) -> None:
    settings = next(c for c in fake.commands() if c["name"] == "settings")
    set_ = next(o for o in settings["options"] if o["name"] == "set")
    key, value = set_["options"]
    assert {"strength", "steps", "ar", "negative", "count", "style", "file"} <= {
        c["value"] for c in key["choices"]}
    assert value["autocomplete"] is True
    rec = await fake.inject_interaction(p.autocomplete(
        "settings set", {"key": "style"}, focused="value", value="an"))
    assert [c["value"] for c in await fake.wait_for(lambda: fake.choices(rec.token))] == ["anime"]


async def test_styles_and_providers(fake: FakeDiscord, bot: commands.Bot) -> None:
    styles = await reply(fake, "styles")
    assert styles.ephemeral and "• anime: …, anime style, clean line art" in styles.content
    providers = await reply(fake, "providers")
    assert providers.content == "Backends:\n• webui: a1111, 1 credit per image"


async def test_cancel_refunds_the_newest_queued_job(fake: FakeDiscord, app: App,
                                                    a1111: FakeA1111, bot: commands.Bot) -> None:
    a1111.delay = 5  # the first job keeps the only slot busy, so the second waits in the queue
    running = await submit(app, "first")
    queued = await submit(app, "second")
    assert await app.service.credits.balance(ref(MEMBER)) == 18

    cancelled = await reply(fake, "cancel")
    assert cancelled.ephemeral and cancelled.content == "Cancelled and refunded 1 credit."
    job = await app.storage.get_job(queued.id)
    assert job is not None and job.status == "cancelled"
    assert await app.service.credits.balance(ref(MEMBER)) == 19
    assert [e.kind for e in await app.service.credits.history(ref(MEMBER), 5)][:1] == ["refund"]
    assert running.id in app.service.active

    await app.service.cancel(running.id)
    assert isinstance([e async for e in running.events()][-1], Failed)
    nothing = await reply(fake, "cancel")
    assert nothing.content == "You have no image in progress."


async def test_forget_asks_then_erases_prompts_and_settings(
        fake: FakeDiscord, app: App, bot: commands.Bot) -> None:
    handle = await submit(app, "my secret prompt")
    assert isinstance([e async for e in handle.events()][-1], Done)
    await app.preferences.set_user(ref(MEMBER), "steps", "30")

    question = await reply(fake, "forget")
    assert question.ephemeral and question.content.startswith("Erase the prompts")
    kept = await fake.press(question, label="Keep", user=MEMBER)
    await fake.wait_for(lambda: kept.response_type == 7)
    assert question.content == "Nothing was erased." and question.buttons == []
    assert await app.storage.user_settings(ref(MEMBER).key) != {}

    again = await reply(fake, "forget")
    erase = await fake.press(again, label="Erase my data", user=MEMBER)
    await fake.wait_for(lambda: erase.response_type == 7)
    assert again.content == "Done: your settings and the prompts of 1 image are erased."
    assert await app.storage.user_settings(ref(MEMBER).key) == {}
    job = await app.storage.get_job(handle.id)
    assert job is not None and job.params == {} and job.status == "succeeded"
    assert await app.service.credits.balance(ref(MEMBER)) == 19  # the ledger stays
