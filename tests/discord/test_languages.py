"""The bot answers in the language chosen with /settings set language, else the server's default,
else the reader's Discord locale; the synced commands carry their descriptions in every shipped
locale Discord has."""

from __future__ import annotations

from pathlib import Path

import discord
import pytest

from adapters.discord.locale import shipped
from bot.i18n import LANGUAGE_NAMES, negotiate, render
from tests.discord.conftest import bot_config, started
from tests.discord.helpers import ask, outcome, refusal
from tests.fakes import discord_payloads as p
from tests.fakes.a1111 import FakeA1111
from tests.fakes.discord_api import FakeDiscord
from tests.fakes.discord_model import FakeMessage
from tests.fakes.discord_world import ADMIN
from tests.texts import en

# Discord has no Persian client locale: a Persian reader picks it with /settings set language.
CHOSEN = {"fa"}


async def answer(fake: FakeDiscord, command: str, options: dict[str, str] | None = None,
                 locale: str = "en-US") -> FakeMessage:
    rec = await fake.inject_interaction(p.slash_command(command, options, locale=locale))
    return await fake.wait_for(lambda: fake.original(rec.token))


@pytest.mark.parametrize("code", ["ru", "es-ES", "pt-BR", "de", "fa"])
async def test_help_errors_refusals_and_the_result_speak_the_users_language(
        tmp_path: Path, fake: FakeDiscord, a1111: FakeA1111, code: str) -> None:
    locale = negotiate(code)
    config = bot_config(tmp_path / "bot.db", fake, a1111, credits={"initial": 1})
    client = "en-US" if code in CHOSEN else code
    async with started(fake, config):
        if code in CHOSEN:
            chosen = await answer(fake, "settings set", {"key": "language", "value": code})
            assert chosen.content == render("language-set", locale,
                                            language=LANGUAGE_NAMES[str(locale)])
        help_text = (await answer(fake, "help", locale=client)).content
        assert help_text.startswith(f"**{render('help-how-title', locale)}**\n"
                                    f"{render('dc-help-how', locale)}")
        assert render("provider-price", locale, count=1) in help_text

        bad = await ask(fake, {"size": "huge"}, locale=client)  # refused as the answer itself
        note = await fake.wait_for(lambda: fake.original(bad.token))
        assert note.ephemeral and note.content == render("error-size-format", locale)

        result = await outcome(fake, await ask(fake, locale=client))
        assert result.embed is not None
        assert result.embed["description"] == "a cat"
        names = [f["name"] for f in result.embed["fields"]]
        assert names[:3] == [render(f"field-{k}", locale) for k in ("seed", "strength",
                                                                    "provider")]
        assert {"name": render("field-balance", locale), "value": "0",
                "inline": True} in result.embed["fields"]
        assert result.embed["footer"]["text"] == render("dc-requested-by", locale,
                                                        name="Bob")  # the display name
        assert result.buttons[0]["label"] == render("dc-button-again", locale)

        note = await refusal(fake, await ask(fake, locale=client))
        assert note.content == render("error-insufficient-credits", locale, count=1, balance=0)


async def test_synced_commands_carry_every_shipped_locale(
        fake: FakeDiscord, a1111: FakeA1111, tmp_path: Path) -> None:
    wanted = {loc.value: shipped(loc) for loc in discord.Locale if shipped(loc)}
    assert {"ru", "es-ES", "es-419", "pt-BR", "de", "uk", "tr", "id"} <= set(wanted)
    async with started(fake, bot_config(tmp_path / "bot.db", fake, a1111)):
        synced = {c["name"]: c for c in fake.command_puts[-1].commands}
    img2img = synced["img2img"]
    assert img2img["description_localizations"] == {
        code: render("dc-cmd-img2img", loc) for code, loc in wanted.items()}
    prompt = next(o for o in img2img["options"] if o["name"] == "prompt")
    assert prompt["description_localizations"]["pt-BR"] == render("dc-opt-prompt", "pt_BR")
    for command in synced.values():
        if command.get("type", 1) == 1:
            assert set(command["description_localizations"]) == set(wanted), command["name"]
            assert "name_localizations" not in command or not command["name_localizations"]
    menu = synced[en("dc-menu-transform")]
    assert menu["name_localizations"]["de"] == render("dc-menu-transform", "de")
    key = next(o for o in synced["settings"]["options"] if o["name"] == "set")["options"][0]
    steps = next(c for c in key["choices"] if c["value"] == "steps")
    assert steps["name_localizations"]["ru"] == f"steps: {render('dc-opt-steps', 'ru')}"


async def test_a_servers_default_language_is_used_unless_a_member_chose_their_own(
        tmp_path: Path, fake: FakeDiscord, a1111: FakeA1111) -> None:
    async with started(fake, bot_config(tmp_path / "bot.db", fake, a1111)):
        rec = await fake.inject_interaction(p.slash_command(
            "img2img-admin set", {"key": "language", "value": "de"}, user=ADMIN))
        await fake.wait_for(lambda: fake.original(rec.token))
        help_text = (await answer(fake, "help")).content  # an English client, in the server
        assert help_text.startswith(f"**{render('help-how-title', 'de')}**")
        await answer(fake, "settings set", {"key": "language", "value": "es"})
        assert (await answer(fake, "help")).content.startswith(
            f"**{render('help-how-title', 'es')}**")
