"""End-to-end: /credits, /settings, /styles, /providers, /cancel, /forget on the fake Discord."""

from __future__ import annotations

from typing import Any

from discord.ext import commands

from bot.app import App
from tests.discord.helpers import ask, balance, ledger, outcome, user_ref
from tests.fakes import discord_payloads as p
from tests.fakes.a1111 import FakeA1111
from tests.fakes.discord_api import FakeDiscord
from tests.fakes.discord_model import FakeMessage
from tests.fakes.discord_world import MEMBER, FakeUser
from tests.texts import en, warning


async def reply(fake: FakeDiscord, command: str, options: dict[str, Any] | None = None,
                user: FakeUser = MEMBER) -> FakeMessage:
    """Run ``/command`` as ``user`` and return the bot's answer."""
    rec = await fake.inject_interaction(p.slash_command(command, options, user=user))
    return await fake.wait_for(lambda: fake.original(rec.token))


async def job_ids(app: App) -> list[str]:
    """The member's jobs, from the ledger's reservations."""
    entries = await app.service.credits.history(user_ref(MEMBER), 50)
    return [e.job_id for e in entries if e.kind == "reserve" and e.job_id]


async def test_credits_shows_the_balance_and_ledger_privately(
        fake: FakeDiscord, app: App, bot: commands.Bot) -> None:
    first = await reply(fake, "credits")
    assert first.ephemeral
    assert first.content.startswith(f"**{en('dc-balance', count=20)}**\n{en('dc-recent')}\n• ")
    assert first.content.endswith(f"+20 {en('ledger-initial')}")
    await app.service.credits.grant(user_ref(MEMBER), 5)
    second = await reply(fake, "credits")
    assert f"**{en('dc-balance', count=25)}**" in second.content
    assert [line.split()[-2:] for line in second.content.splitlines()[2:]] == [
        ["+5", en("ledger-grant")], ["+20", en("ledger-initial")]]


async def test_settings_set_show_and_reset(fake: FakeDiscord, app: App,
                                           bot: commands.Bot) -> None:
    done = await reply(fake, "settings set", {"key": "strength", "value": "0.4"})
    assert done.ephemeral and done.content == en("setting-user-default", key="strength",
                                                    value=0.4)
    await reply(fake, "settings set", {"key": "file", "value": "on"})
    assert await app.storage.user_settings(user_ref(MEMBER).key) == {
        "version": 1, "defaults": {"strength": 0.4}, "prefs": {"file": True}}

    shown = await reply(fake, "settings show")
    assert shown.content == f"{en('dc-your-defaults')}\n• strength: 0.4\n• file: on"

    refused = await reply(fake, "settings set", {"key": "steps", "value": "900"})
    assert refused.ephemeral and refused.content == en("error-number-whole", option="--steps",
                                                       low=1, high=150)
    one = await reply(fake, "settings reset", {"key": "strength"})
    assert one.content == en("settings-user-reset-key", key="strength")
    assert await app.storage.user_settings(user_ref(MEMBER).key) == {"version": 1, "defaults": {},
                                                                "prefs": {"file": True}}
    every = await reply(fake, "settings reset")
    assert every.content == en("settings-user-reset")
    assert await app.storage.user_settings(user_ref(MEMBER).key) == {}


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
    price = en("provider-price", count=1)
    assert providers.content == (f"{en('dc-backends')}\n• webui: a1111, {price}\n"
                                 f"• echo: echo, {price}")


async def test_cancel_refunds_the_newest_queued_job(fake: FakeDiscord, app: App,
                                                    a1111: FakeA1111, bot: commands.Bot) -> None:
    a1111.delay = 5  # the first job keeps the only slot busy, so the second waits in the queue
    first = await ask(fake, {"prompt": "first"})
    await fake.wait_for(lambda: len(app.service.active) == 1)
    second = await ask(fake, {"prompt": "second"})
    await fake.wait_for(lambda: len(app.service.active) == 2)
    assert await balance(app) == 18

    cancelled = await reply(fake, "cancel")
    assert cancelled.ephemeral and cancelled.content == en("dc-cancelled-refunded", count=1)
    shown = await outcome(fake, second)
    assert shown.content.startswith(warning("error-cancelled"))
    assert await balance(app) == 19
    assert (await ledger(app))[-1] == ("refund", 1)
    assert fake.original(first.token) is not None and len(app.service.active) == 1

    again = await reply(fake, "cancel")
    assert again.content == en("dc-cancelled-refunded", count=1)
    await outcome(fake, first)
    nothing = await reply(fake, "cancel")
    assert nothing.content == en("dc-nothing-to-cancel")
    assert await balance(app) == 20


async def test_forget_asks_then_erases_prompts_and_settings(
        fake: FakeDiscord, app: App, bot: commands.Bot) -> None:
    asked = await ask(fake, {"prompt": "my secret prompt"})
    assert (await outcome(fake, asked)).embeds
    await app.preferences.set_user(user_ref(MEMBER), "steps", "30")

    question = await reply(fake, "forget")
    assert question.ephemeral and question.content == en("dc-forget-question")
    kept = await fake.press(question, label=en("dc-forget-keep"), user=MEMBER)
    await fake.wait_for(lambda: kept.response_type == 7)
    assert question.content == en("dc-forget-kept") and question.buttons == []
    assert await app.storage.user_settings(user_ref(MEMBER).key) != {}

    again = await reply(fake, "forget")
    erase = await fake.press(again, label=en("dc-forget-erase"), user=MEMBER)
    await fake.wait_for(lambda: erase.response_type == 7)
    assert again.content == en("dc-forget-done", count=1)
    assert await app.storage.user_settings(user_ref(MEMBER).key) == {}
    [job_id] = await job_ids(app)
    job = await app.storage.get_job(job_id)
    assert job is not None and job.params == {} and job.origin == {}
    assert job.status == "delivered"
    assert await balance(app) == 19  # the ledger stays
