"""End-to-end: the result buttons, pressed by the requester and by others, before and after a
restart (a second bot process on the same fake Discord and database)."""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

from discord.ext import commands
from PIL import Image

from bot.app import App
from bot.config import Config
from bot.models import ChatRef
from tests.discord.conftest import started
from tests.discord.helpers import ask, balance, ledger, outcome
from tests.fakes.a1111 import FakeA1111
from tests.fakes.discord_api import FakeDiscord
from tests.fakes.discord_model import FakeMessage
from tests.fakes.discord_payloads import component_press
from tests.fakes.discord_world import ADMIN, GUILD, MEMBER, NSFW
from tests.texts import en

WEAKER = en("dc-button-weaker")


def seed_of(msg: FakeMessage) -> int:
    assert msg.embed is not None
    return int(next(f["value"] for f in msg.embed["fields"] if f["name"] == en("field-seed")))


def colour(seed: int) -> tuple[int, int, int]:
    """The colour the fake A1111 paints an image with ``seed``."""
    return seed % 256, seed // 256 % 256, seed // 65536 % 256


def init_colour(body: dict[str, Any]) -> tuple[int, int, int]:
    image = Image.open(io.BytesIO(base64.b64decode(body["init_images"][0]))).convert("RGB")
    pixel = image.getpixel((image.width // 2, image.height // 2))
    assert isinstance(pixel, tuple)
    return pixel[0], pixel[1], pixel[2]


def near(got: tuple[int, int, int], want: tuple[int, int, int]) -> bool:
    """Equal within what JPEG (the WebUI's input format) does to a flat colour."""
    return max(abs(a - b) for a, b in zip(got, want, strict=True)) <= 3


async def first_result(fake: FakeDiscord) -> FakeMessage:
    return await outcome(fake, await ask(fake, {"strength": 0.6}))


async def test_again_is_a_new_request_charged_to_the_presser(
        fake: FakeDiscord, a1111: FakeA1111, app: App, bot: commands.Bot) -> None:
    result = await first_result(fake)
    press = await fake.press(result, emoji="🔁", user=ADMIN)
    again = await outcome(fake, press)
    assert press.callbacks == [{"type": 5}] and again.id != result.id
    first, second = a1111.img2img_bodies
    assert second["prompt"] == first["prompt"] and second["denoising_strength"] == 0.6
    assert second["seed"] != seed_of(result)  # a new random seed
    assert init_colour(second) == init_colour(first)  # the same input photo
    assert await ledger(app, ADMIN) == [("initial", 20), ("reserve", -1)]
    assert await balance(app, MEMBER) == 19
    assert again.embed is not None and "Bob" not in again.embed["footer"]["text"]


async def test_strength_buttons_keep_the_seed(fake: FakeDiscord, a1111: FakeA1111, app: App,
                                              bot: commands.Bot) -> None:
    result = await first_result(fake)
    weaker = await outcome(fake, await fake.press(result, label=WEAKER, user=MEMBER))
    stronger = await outcome(fake, await fake.press(result, label=en("dc-button-stronger"),
                                                    user=MEMBER))
    _, low, high = a1111.img2img_bodies
    assert (low["denoising_strength"], high["denoising_strength"]) == (0.5, 0.7)
    assert low["seed"] == high["seed"] == seed_of(result)
    assert seed_of(weaker) == seed_of(stronger) == seed_of(result)
    assert await balance(app) == 17


async def test_use_as_input_takes_the_result(fake: FakeDiscord, a1111: FakeA1111, app: App,
                                             bot: commands.Bot) -> None:
    result = await first_result(fake)
    reused = await outcome(fake, await fake.press(result, emoji="♻️", user=MEMBER))
    _, second = a1111.img2img_bodies
    assert near(init_colour(second), colour(seed_of(result)))
    assert reused.embed is not None and await balance(app) == 18


async def test_delete_is_for_the_requester_only(fake: FakeDiscord, app: App,
                                                bot: commands.Bot) -> None:
    result = await first_result(fake)
    other = await fake.press(result, emoji="🗑", user=ADMIN)
    refused = await fake.wait_for(lambda: fake.original(other.token))
    assert refused.ephemeral
    assert refused.content == en("dc-only-requester-delete")
    assert not result.deleted
    await fake.press(result, emoji="🗑", user=MEMBER)
    await fake.wait_for(lambda: result.deleted)


async def test_a_press_follows_the_servers_policy(fake: FakeDiscord, a1111: FakeA1111, app: App,
                                                  bot: commands.Bot) -> None:
    result = await first_result(fake)
    await app.preferences.set_chat(ChatRef("discord", str(GUILD.id)), "banned_words", "add cat")
    press = await fake.press(result, emoji="🔁", user=ADMIN)
    note = await fake.wait_for(lambda: next((m for m in fake.followups(press.token)
                                             if m.ephemeral), None))
    assert note.content == en("error-banned-word")
    assert len(a1111.img2img_bodies) == 1 and await balance(app, ADMIN) == 20


async def test_buttons_work_after_a_restart(fake: FakeDiscord, a1111: FakeA1111,
                                            config: Config, tmp_path: Path) -> None:
    async with started(fake, config):
        result = await first_result(fake)
    async with started(fake, config) as (app, _):
        again = await outcome(fake, await fake.press(result, emoji="🔁", user=MEMBER))
        assert again.embed is not None and len(a1111.img2img_bodies) == 2
        weaker = await outcome(fake, await fake.press(result, label=WEAKER, user=MEMBER))
        assert seed_of(weaker) == seed_of(result)
        await fake.press(result, emoji="🗑", user=MEMBER)
        await fake.wait_for(lambda: result.deleted)
        assert await balance(app) == 17
    assert fake.put_count == 1  # the second start did not sync the unchanged commands


async def test_a_forged_press_from_another_channel_is_refused_and_fetches_nothing(
        fake: FakeDiscord, a1111: FakeA1111, app: App, bot: commands.Bot) -> None:
    """A result button of a job in #general, pressed under a message in #nsfw-art.

    discord.py drops a press whose custom_id is not on the message, so the forged message
    carries the victim's buttons (as a crafted client or a copied message would show them).
    """
    victim = await first_result(fake)
    own = await outcome(fake, await ask(fake, user=ADMIN, channel=NSFW))
    forged = next(c for c in victim.custom_ids if c.startswith("img2img:r:again:"))
    fetched, jobs = list(fake.cdn_gets), len(a1111.img2img_bodies)
    elsewhere = {**own.to_api(), "components": victim.to_api()["components"]}
    press = await fake.inject_interaction(component_press(
        elsewhere, forged, user=ADMIN, guild=GUILD, channel=NSFW))
    note = await fake.wait_for(lambda: next((m for m in fake.followups(press.token)
                                             if m.ephemeral), None))
    assert note.content == en("error-buttons-elsewhere")
    assert fake.cdn_gets == fetched  # the photo posted in #general was not fetched again
    assert len(a1111.img2img_bodies) == jobs
    assert await balance(app, ADMIN) == 19  # their own image only
