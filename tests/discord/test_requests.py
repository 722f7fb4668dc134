"""End-to-end: /img2img and the context menu, through real discord.py, the core and a fake A1111."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

from discord.ext import commands
from PIL import Image

from bot.app import App
from bot.i18n import render
from tests.discord.conftest import bot_config, started
from tests.discord.helpers import PHOTO, ask, balance, ledger, not_charged, outcome, refusal
from tests.fakes import discord_payloads as p
from tests.fakes.a1111 import FakeA1111
from tests.fakes.discord_api import FakeDiscord
from tests.fakes.discord_model import FakeMessage
from tests.fakes.discord_world import GENERAL, MEMBER, OUTSIDER
from tests.fakes.server import InternalServer, png_bytes
from tests.texts import en, warning

MENU = en("dc-menu-transform")
RESULT_BUTTONS = [en(f"dc-button-{b}") for b in ("again", "weaker", "stronger", "reuse", "delete")]
FIELDS = ("prompt", "seed", "strength", "provider", "style", "size", "cost", "balance")


def fields(msg: FakeMessage) -> dict[str, str]:
    """The result embed's fields, keyed by their message id's last word ("field-seed": "seed")."""
    assert msg.embed is not None
    keys = {en(f"field-{key}"): key for key in FIELDS}
    return {keys.get(f["name"], f["name"]): f["value"] for f in msg.embed["fields"]}


async def test_slash_command_without_options(fake: FakeDiscord, a1111: FakeA1111, app: App,
                                             bot: commands.Bot) -> None:
    rec = await ask(fake)
    msg = await outcome(fake, rec)
    assert rec.callbacks == [{"type": 5}]  # deferred at once, publicly
    assert not msg.ephemeral and msg.embed is not None
    assert msg.embed["description"] == "a cat"
    shown = fields(msg)
    assert shown["strength"] == "0.6" and shown["provider"] == "WebUI"
    assert shown["cost"] == "1" and shown["balance"] == "19"
    [body] = a1111.img2img_bodies
    seed = int(shown["seed"])  # the fake paints each image in its seed's colour
    pixel = Image.open(io.BytesIO(msg.file())).getpixel((0, 0))
    assert pixel == (seed % 256, seed // 256 % 256, seed // 65536 % 256)
    assert body["prompt"] == "a cat" and body["denoising_strength"] == 0.6
    [attachment] = msg.attachments
    assert attachment.filename == f"img2img-{shown['seed']}.png"
    assert msg.embed["image"]["url"] == f"attachment://{attachment.filename}"
    assert Image.open(io.BytesIO(attachment.data)).format == "PNG"
    assert [b["label"] for b in msg.buttons] == RESULT_BUTTONS
    assert await ledger(app) == [("initial", 20), ("reserve", -1)]


async def test_slash_command_with_options(fake: FakeDiscord, a1111: FakeA1111, app: App,
                                          bot: commands.Bot) -> None:
    rec = await ask(fake, {"prompt": "a castle", "strength": 0.35, "steps": 30, "seed": 1234,
                           "cfg": 5.5, "negative": "blurry", "size": "768x512",
                           "style": "anime", "provider": "webui", "count": 2})
    msg = await outcome(fake, rec)
    [body] = a1111.img2img_bodies
    assert body["denoising_strength"] == 0.35 and body["steps"] == 30
    assert body["seed"] == 1234 and body["cfg_scale"] == 5.5
    assert (body["width"], body["height"]) == (768, 512) and body["batch_size"] == 2
    assert body["prompt"] == "a castle, anime style, clean line art"
    assert "blurry" in body["negative_prompt"]
    shown = fields(msg)
    assert shown["seed"] == "1234" and shown["style"] == "anime" and shown["size"] == "768x512"
    assert [a.filename for a in msg.attachments] == ["img2img-1234-1.png", "img2img-1234-2.png"]
    cost = int(shown["cost"])
    assert cost >= 2 and await balance(app) == 20 - cost == int(shown["balance"])


async def test_aspect_ratio_option(fake: FakeDiscord, a1111: FakeA1111, app: App,
                                   bot: commands.Bot) -> None:
    msg = await outcome(fake, await ask(fake, {"ar": "1:2"}))
    [body] = a1111.img2img_bodies
    assert body["height"] > body["width"] and fields(msg)["size"] == f"{body['width']}x" \
        f"{body['height']}"


async def test_slash_command_in_a_dm(fake: FakeDiscord, a1111: FakeA1111, app: App,
                                     bot: commands.Bot) -> None:
    att = fake.add_attachment("dm.png", PHOTO, ephemeral=True)
    rec = await fake.inject_interaction(p.slash_command(
        "img2img", {"image": att, "prompt": "a dog"}, user=OUTSIDER, guild=None))
    msg = await outcome(fake, rec)
    assert msg.guild_id is None and fields(msg)["balance"] == "19"


async def test_context_menu_opens_a_modal_then_runs(fake: FakeDiscord, a1111: FakeA1111,
                                                    app: App, bot: commands.Bot) -> None:
    att = fake.add_attachment("holiday.jpg", png_bytes((300, 200)), channel_id=GENERAL.id)
    target = p.user_message("look at this", attachments=[att], author=MEMBER)
    rec = await fake.inject_interaction(p.message_command(MENU, target))
    modal = await fake.wait_for(lambda: fake.modal(rec.token))
    assert modal["title"] == MENU
    assert modal["custom_id"] == f"img2img:m:{rec.id}"
    submit = await fake.submit_modal(rec.token, {"prompt": "at sunset --steps 12",
                                                 "strength": "0.3"})
    msg = await outcome(fake, submit)
    assert submit.callbacks == [{"type": 5}]
    [body] = a1111.img2img_bodies
    assert body["prompt"] == "at sunset" and body["steps"] == 12
    assert body["denoising_strength"] == 0.3
    assert msg.embed is not None and msg.embed["description"] == "at sunset"
    assert fake.cdn_gets == [att["url"].split("?")[0].removeprefix(fake.base_url)]


async def test_context_menu_on_an_image_embed(fake: FakeDiscord, a1111: FakeA1111, app: App,
                                              bot: commands.Bot) -> None:
    url = fake.add_attachment("linked.png", png_bytes((200, 200)))["url"]
    target = p.user_message(url, embeds=[p.image_embed(url, width=200, height=200)])
    rec = await fake.inject_interaction(p.message_command(MENU, target))
    await fake.wait_for(lambda: fake.modal(rec.token))
    msg = await outcome(fake, await fake.submit_modal(rec.token, {"prompt": "pop art"}))
    assert fields(msg)["strength"] == "0.6" and len(a1111.img2img_bodies) == 1


async def test_an_embed_pointing_into_the_network_is_refused_unrequested(
        fake: FakeDiscord, a1111: FakeA1111, app: App, bot: commands.Bot) -> None:
    async with InternalServer() as internal:
        secret = f"{internal.base_url}/secret.png"
        target = p.user_message(secret, embeds=[p.image_embed(secret, proxy_url=secret)])
        rec = await fake.inject_interaction(p.message_command(MENU, target))
        note = await fake.wait_for(lambda: fake.original(rec.token))
        assert note.ephemeral and note.content == en("dc-only-discord-images")
        assert fake.modal(rec.token) is None
        assert internal.requests == []  # its access log
    assert a1111.img2img_bodies == [] and await not_charged(app)


async def test_a_media_proxy_redirect_into_the_network_is_refused_unrequested(
        fake: FakeDiscord, a1111: FakeA1111, app: App, bot: commands.Bot) -> None:
    """The embed's proxy_url is on Discord's own origin, which answers 302 to 127.0.0.1."""
    async with InternalServer() as internal:
        fake.external["secret.png"] = f"{internal.base_url}/secret.png"
        proxied = f"{fake.base_url}/external/secret.png"
        target = p.user_message("look", embeds=[p.image_embed(
            f"{internal.base_url}/secret.png", proxy_url=proxied)])
        rec = await fake.inject_interaction(p.message_command(MENU, target))
        await fake.wait_for(lambda: fake.modal(rec.token))
        submit = await fake.submit_modal(rec.token, {"prompt": "pop art"})
        note = await refusal(fake, submit)
        assert note.content == en("dc-only-discord-images")
        assert fake.cdn_gets == ["/external/secret.png"]  # the proxy was asked, once
        assert internal.requests == []
    assert a1111.img2img_bodies == [] and await not_charged(app)


async def test_context_menu_on_a_message_without_image(fake: FakeDiscord, app: App,
                                                       bot: commands.Bot) -> None:
    rec = await fake.inject_interaction(p.message_command(
        MENU, p.user_message("just words")))
    msg = await fake.wait_for(lambda: fake.original(rec.token))
    assert msg.ephemeral and msg.content == en("dc-no-image")
    assert fake.modal(rec.token) is None


async def test_bad_option_is_refused_without_charge(fake: FakeDiscord, a1111: FakeA1111,
                                                    app: App, bot: commands.Bot) -> None:
    rec = await ask(fake, {"size": "huge"})
    # Refused by the option's transformer: the private answer itself, with no public placeholder.
    note = await fake.wait_for(lambda: fake.original(rec.token))
    assert note.ephemeral and note.content == en("error-size-format")
    assert fake.followups(rec.token) == []
    assert a1111.img2img_bodies == [] and await not_charged(app)


async def test_bad_aspect_ratio_is_refused_before_the_command_runs(
        fake: FakeDiscord, a1111: FakeA1111, app: App, bot: commands.Bot) -> None:
    for ratio, msg_id in (("wide", "error-ar-format"), ("9:1", "error-ar-range")):
        rec = await ask(fake, {"ar": ratio})
        note = await fake.wait_for(lambda rec=rec: fake.original(rec.token))
        assert note.ephemeral and note.content == render(msg_id)
    assert a1111.img2img_bodies == [] and await not_charged(app)
    assert await app.first_time("discord", str(rec.id))  # never claimed


async def test_bad_modal_strength_is_refused(fake: FakeDiscord, a1111: FakeA1111, app: App,
                                             bot: commands.Bot) -> None:
    att = fake.add_attachment("a.png", PHOTO)
    rec = await fake.inject_interaction(p.message_command(
        MENU, p.user_message(attachments=[att])))
    await fake.wait_for(lambda: fake.modal(rec.token))
    submit = await fake.submit_modal(rec.token, {"prompt": "x", "strength": "strong"})
    note = await refusal(fake, submit)
    assert note.content == en("error-number", option="--strength", low=0, high=1)
    assert a1111.img2img_bodies == []


async def test_non_image_is_refused_before_download(fake: FakeDiscord, a1111: FakeA1111,
                                                    app: App, bot: commands.Bot) -> None:
    rec = await ask(fake, image=b"just some notes\n", filename="notes.txt")
    note = await refusal(fake, rec)
    assert note.content == en("dc-not-an-image", formats=en("image-formats"))
    assert fake.cdn_gets == [] and a1111.img2img_bodies == []
    assert await not_charged(app)


async def test_corrupt_image_is_refused_without_charge(fake: FakeDiscord, a1111: FakeA1111,
                                                       app: App, bot: commands.Bot) -> None:
    rec = await ask(fake, image=PHOTO[: len(PHOTO) // 2], filename="broken.png")
    note = await refusal(fake, rec)
    assert note.content == en("error-image-incomplete")
    assert a1111.img2img_bodies == [] and await not_charged(app)


async def test_attachment_above_the_limit_is_not_downloaded(
        tmp_path: Path, fake: FakeDiscord, a1111: FakeA1111) -> None:
    config = bot_config(tmp_path / "bot.db", fake, a1111, limits={"max_input_bytes": 2048})
    async with started(fake, config) as (app, _):
        rec = await ask(fake, image=png_bytes((64, 48)) + b"\0" * 4000)
        note = await refusal(fake, rec)
        assert note.content == en("dc-image-too-big", size="5 KB", limit="2 KB")
        assert fake.cdn_gets == [] and await not_charged(app)


async def test_insufficient_credits(tmp_path: Path, fake: FakeDiscord, a1111: FakeA1111) -> None:
    config = bot_config(tmp_path / "bot.db", fake, a1111, credits={"initial": 0})
    async with started(fake, config) as (app, _):
        note = await refusal(fake, await ask(fake))
        assert note.content == en("error-insufficient-credits", count=1, balance=0)
        assert a1111.img2img_bodies == [] and await balance(app) == 0


async def test_backend_failure_is_refunded_and_explained(fake: FakeDiscord, a1111: FakeA1111,
                                                         app: App, bot: commands.Bot) -> None:
    a1111.fail("oom")
    msg = await outcome(fake, await ask(fake))
    # The failure's one sentence, then the refund notice, written once.
    assert msg.content == warning("failure-refunded-balance", balance=20,
                                  message=en("error-out-of-memory"))
    assert msg.buttons == [] and msg.attachments == [] and not msg.ephemeral
    assert await ledger(app) == [("initial", 20), ("reserve", -1), ("refund", 1)]


async def test_redelivered_interaction_runs_once(fake: FakeDiscord, a1111: FakeA1111, app: App,
                                                 bot: commands.Bot) -> None:
    att = fake.add_attachment("photo.png", PHOTO)
    payload = p.slash_command("img2img", {"image": att, "prompt": "once"})
    rec = await fake.inject_interaction(payload)
    await outcome(fake, rec)
    assert await fake.inject_interaction(payload) is rec
    await asyncio.sleep(0.2)  # time for the bot to see it (and ignore it)
    assert len(a1111.img2img_bodies) == 1 and len(rec.callbacks) == 1
    assert await ledger(app) == [("initial", 20), ("reserve", -1)]


async def test_autocomplete_styles_providers_models(fake: FakeDiscord, a1111: FakeA1111, app: App,
                                                    bot: commands.Bot) -> None:
    styles = await fake.inject_interaction(p.autocomplete(
        "img2img", {"prompt": "x"}, focused="style", value="an"))
    assert [c["value"] for c in await fake.wait_for(lambda: fake.choices(styles.token))] == [
        "anime"]
    every = await fake.inject_interaction(p.autocomplete("img2img", focused="provider"))
    assert [c["value"] for c in await fake.wait_for(lambda: fake.choices(every.token))] == [
        "echo", "webui"]
    models = await fake.inject_interaction(p.autocomplete(
        "img2img", {"provider": "webui"}, focused="model", value="xl"))
    [choice] = await fake.wait_for(lambda: fake.choices(models.token))
    assert choice["value"].startswith("sd_xl_base_1.0")


async def test_autocomplete_is_capped_at_25(tmp_path: Path, fake: FakeDiscord,
                                            a1111: FakeA1111) -> None:
    many = {f"style-{i:02d}": {"prompt": "{prompt}"} for i in range(40)}
    async with started(fake, bot_config(tmp_path / "bot.db", fake, a1111, styles=many)):
        rec = await fake.inject_interaction(p.autocomplete("img2img", focused="style"))
        choices = await fake.wait_for(lambda: fake.choices(rec.token))
        assert len(choices) == 25 and choices[0]["value"] == "style-00"
