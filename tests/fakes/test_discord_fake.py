"""Self-tests: real discord.py (commands.Bot, app_commands, views, modals) against the fake."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator

import discord
import pytest
import yarl
from discord.ext import commands
from PIL import Image

from tests.fakes import discord_payloads as p
from tests.fakes.discord_api import FakeDiscord, point_discord_py_at, run_bot
from tests.fakes.discord_sample_bot import RecordingTree, inverted_png, make_bot
from tests.fakes.discord_world import ADMIN, GENERAL, GUILD, MEMBER, NSFW, OWNER
from tests.fakes.server import png_bytes


@pytest.fixture
async def fake(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord() as server:
        assert isinstance(server, FakeDiscord)
        point_discord_py_at(server, monkeypatch)
        yield server


@pytest.fixture
async def bot(fake: FakeDiscord) -> AsyncIterator[commands.Bot]:
    async with run_bot(fake, make_bot()) as running:
        assert isinstance(running, commands.Bot)
        yield running


async def test_slash_command_defers_then_sends_a_followup_file(fake: FakeDiscord,
                                                             bot: commands.Bot) -> None:
    source = png_bytes()
    att = fake.add_attachment("cat.png", source)
    rec = await fake.inject_interaction(p.slash_command(
        "img2img", {"image": att, "prompt": "a cat"}, user=MEMBER, channel=NSFW))
    msg = await fake.wait_for(lambda: fake.followups(rec.token))
    assert rec.callbacks == [{"type": 5}]
    assert msg[0] is fake.original(rec.token)  # the first follow-up replaced "is thinking…"
    assert not msg[0].loading and not msg[0].ephemeral
    assert msg[0].content == f"a cat | style=None | nsfw=True | member=True | limit={10 << 20}"
    assert msg[0].file("result.png") == inverted_png(source)
    assert msg[0].attachments[0].width == 64 and msg[0].attachments[0].content_type == "image/png"
    assert [(c.method, c.path) for c in fake.calls if "/callback" in c.path] == [
        ("POST", f"/interactions/{rec.id}/{rec.token}/callback")]
    assert fake.cdn_gets and not fake.unknown


async def test_slash_command_in_a_dm(fake: FakeDiscord, bot: commands.Bot) -> None:
    att = fake.add_attachment("cat.png", png_bytes(), ephemeral=True)
    rec = await fake.inject_interaction(p.slash_command(
        "img2img", {"image": att, "prompt": "dm"}, user=MEMBER, guild=None))
    [msg] = await fake.wait_for(lambda: fake.followups(rec.token))
    assert msg.content.startswith("dm | style=None | nsfw=None | member=False")
    assert msg.guild_id is None


async def test_edit_original_with_view_and_embed_then_press_persistent_button(
        fake: FakeDiscord, bot: commands.Bot) -> None:
    rec = await fake.inject_interaction(p.slash_command("progress", user=MEMBER, channel=GENERAL))
    original = await fake.wait_for(lambda: (m := fake.original(rec.token)) and m.edits == 2 and m)
    assert original.history[1]["content"] == "50%"  # the progress edit before the result
    assert original.file("result.png") == b"\x89PNG fake"  # a multipart PATCH of @original
    assert original.content == "done" and original.embed is not None
    assert original.embed["title"] == "Result" and original.embed["fields"][0]["value"] == "42"
    again = original.button("Again")
    assert (again["custom_id"], again["emoji"]["name"], again["style"]) == ("result:again", "🔁", 1)
    assert original.button(emoji="🗑")["custom_id"] == f"del:{MEMBER.id}"

    press = await fake.press(original, label="Again", user=ADMIN)
    await fake.wait_for(lambda: press.response_type == 7)
    assert original.content == f"again by {ADMIN.id}" and original.edits == 3
    assert fake.original(press.token) is original


async def test_dynamic_item_works_after_restart_and_refuses_non_requester(
        fake: FakeDiscord, bot: commands.Bot) -> None:
    rec = await fake.inject_interaction(p.slash_command("progress", user=MEMBER))
    result = await fake.wait_for(lambda: (m := fake.original(rec.token)) and m.edits == 2 and m)
    await bot.close()
    async with run_bot(fake, make_bot(sync=False)):  # a fresh process: only registrations remain
        refused = await fake.press(result, emoji="🗑", user=ADMIN)
        reply = await fake.wait_for(lambda: fake.original(refused.token))
        assert reply.ephemeral and reply.content == "Only the requester can delete this."
        assert not result.deleted
        accepted = await fake.press(result, emoji="🗑", user=MEMBER)
        await fake.wait_for(lambda: result.deleted)
        assert accepted.callbacks == [{"type": 6}]


async def test_plain_view_sent_with_the_response_gets_the_press(fake: FakeDiscord,
                                                                bot: commands.Bot) -> None:
    rec = await fake.inject_interaction(p.slash_command("confirm", user=MEMBER, guild=None))
    sure = await fake.wait_for(lambda: fake.original(rec.token))
    [plain] = await fake.wait_for(lambda: [m for m in fake.channel_messages(sure.channel_id)
                                           if m.interaction_token is None])
    assert plain.content == "a plain DM message" and plain.guild_id is None
    press = await fake.press(sure, label="Yes", user=MEMBER)
    await fake.wait_for(lambda: press.response_type == 7)
    assert sure.content == "confirmed" and sure.components == []


async def test_member_query_is_answered_by_a_chunk(monkeypatch: pytest.MonkeyPatch) -> None:
    intents = discord.Intents.default()
    intents.members = True
    async with FakeDiscord() as server:
        assert isinstance(server, FakeDiscord)
        point_discord_py_at(server, monkeypatch)
        async with run_bot(server, make_bot(intents=intents)) as running:
            guild = running.get_guild(GUILD.id)
            assert guild is not None and guild.get_member(ADMIN.id) is not None
            found = await guild.query_members("al")
            assert [m.id for m in found] == [ADMIN.id]
        assert [r["op"] for r in server.gateway.received].count(8) == 1


async def test_wrong_token_fails_login(monkeypatch: pytest.MonkeyPatch) -> None:
    async with FakeDiscord(token="another-token") as server:
        assert isinstance(server, FakeDiscord)
        point_discord_py_at(server, monkeypatch)
        bot = make_bot()
        with pytest.raises(discord.LoginFailure):
            await bot.login("fake-bot-token")
        await bot.close()


async def test_context_menu_opens_modal_and_submit_reaches_on_submit(
        fake: FakeDiscord, bot: commands.Bot) -> None:
    att = fake.add_attachment("photo.jpg", png_bytes(), channel_id=GENERAL.id)
    target = p.user_message("look", attachments=[att], author=MEMBER)
    rec = await fake.inject_interaction(p.message_command("Remix with img2img", target))
    modal = await fake.wait_for(lambda: fake.modal(rec.token))
    assert modal["custom_id"] == "img2img:modal" and modal["title"] == "Remix with img2img"
    assert [c["type"] for c in modal["components"]] == [1, 1, 18]

    submit = await fake.submit_modal(rec.token, {"prompt": "sunset", "style": "anime"})
    reply = await fake.wait_for(lambda: fake.original(submit.token))
    assert reply.content == "sunset @ 0.6 style=anime on photo.jpg"


async def test_context_menu_on_an_image_embed(fake: FakeDiscord, bot: commands.Bot) -> None:
    url = fake.add_attachment("linked.png", png_bytes())["url"]
    target = p.user_message(url, embeds=[p.image_embed(url)])
    rec = await fake.inject_interaction(p.message_command("Remix with img2img", target))
    await fake.wait_for(lambda: fake.modal(rec.token))
    submit = await fake.submit_modal(rec.token, {"prompt": "x", "strength": "0.3"})
    reply = await fake.wait_for(lambda: fake.original(submit.token))
    assert reply.content == f"x @ 0.3 style= on {url}"


async def test_autocomplete_returns_at_most_25_choices(fake: FakeDiscord,
                                                       bot: commands.Bot) -> None:
    rec = await fake.inject_interaction(p.autocomplete(
        "img2img", {"prompt": "cat"}, focused="style", value="an"))
    choices = await fake.wait_for(lambda: fake.choices(rec.token))
    assert [c["name"] for c in choices] == ["anime", "analog film"]
    every = await fake.inject_interaction(p.autocomplete("img2img", focused="style"))
    assert len(await fake.wait_for(lambda: fake.choices(every.token))) == 25


async def test_editing_a_deleted_message_is_not_found(fake: FakeDiscord, bot: commands.Bot) -> None:
    rec = await fake.inject_interaction(p.slash_command("gone"))
    [note] = await fake.wait_for(lambda: fake.followups(rec.token))
    assert note.content == "NotFound 10008" and note.ephemeral
    assert fake.original(rec.token).deleted  # type: ignore[union-attr]

    channel = bot.get_channel(GENERAL.id)
    assert isinstance(channel, discord.TextChannel)
    posted = await channel.send("temp")
    await fake.delete_message(posted.id)  # a moderator removes it
    with pytest.raises(discord.NotFound) as exc:
        await posted.edit(content="x")
    assert exc.value.code == 10008


async def test_command_sync_is_counted_and_can_be_skipped(fake: FakeDiscord,
                                                          bot: commands.Bot) -> None:
    assert fake.put_count == 1
    names = {c["name"]: c for c in fake.commands()}
    assert {"img2img", "settings", "img2img-admin", "Remix with img2img"} <= set(names)
    assert names["img2img-admin"]["default_member_permissions"] == "32"
    first_ids = {c["id"] for c in fake.commands()}
    await bot.close()
    async with run_bot(fake, make_bot(sync=False)) as again:
        assert isinstance(again, commands.Bot)
        fetched = await again.tree.fetch_commands()
        assert {c.id for c in fetched} == {int(i) for i in first_ids}
    assert fake.put_count == 1


async def test_subcommands_and_manage_server_check(fake: FakeDiscord, bot: commands.Bot) -> None:
    mine = await fake.inject_interaction(p.slash_command(
        "settings set", {"key": "strength", "value": "0.7"}))
    refused = await fake.inject_interaction(p.slash_command(
        "img2img-admin set", {"key": "nsfw", "value": "on"}, user=MEMBER))
    allowed = await fake.inject_interaction(p.slash_command(
        "img2img-admin set", {"key": "nsfw", "value": "on"}, user=ADMIN))
    owner = await fake.inject_interaction(p.slash_command(
        "img2img-admin set", {"key": "steps", "value": "30"}, user=OWNER))
    records = (mine, refused, allowed, owner)
    await fake.wait_for(lambda: all(fake.original(r.token) for r in records))
    assert fake.original(mine.token).content == "strength=0.7"  # type: ignore[union-attr]
    assert fake.original(refused.token).content == "You need Manage Server."  # type: ignore[union-attr]
    assert fake.original(allowed.token).content == "server nsfw=on"  # type: ignore[union-attr]
    assert fake.original(owner.token).content == "server steps=30"  # type: ignore[union-attr]


async def test_redelivered_interaction_cannot_be_answered_twice(fake: FakeDiscord,
                                                                bot: commands.Bot) -> None:
    payload = p.slash_command("settings set", {"key": "k", "value": "v"})
    rec = await fake.inject_interaction(payload)
    await fake.wait_for(lambda: fake.original(rec.token))
    assert await fake.inject_interaction(payload) is rec
    assert isinstance(bot.tree, RecordingTree)
    [error] = await fake.wait_for(lambda: bot.tree.errors)  # type: ignore[attr-defined]
    assert isinstance(error, discord.HTTPException) and error.code == 40060
    assert len(rec.callbacks) == 1


async def test_rate_limited_followup_is_retried(fake: FakeDiscord, bot: commands.Bot) -> None:
    fault = fake.fail_next("POST", r"^/webhooks/\d+/", 429, retry_after=0.05)
    rec = await fake.inject_interaction(p.slash_command(
        "img2img", {"image": fake.add_attachment("a.png", png_bytes()), "prompt": "p"}))
    await fake.wait_for(lambda: fake.followups(rec.token))
    assert fault.hits == 1
    assert [c.status for c in fake.calls if c.path.startswith("/webhooks/")] == [429, 200]


async def test_upload_above_the_interaction_limit_is_rejected(fake: FakeDiscord,
                                                              bot: commands.Bot) -> None:
    rec = await fake.inject_interaction(p.slash_command("big", attachment_size_limit=1000))
    [msg] = await fake.wait_for(lambda: fake.followups(rec.token))
    assert msg.content == "shrunk after 413/40005" and msg.file() == b"x" * 10


async def test_late_callback_is_unknown_interaction(monkeypatch: pytest.MonkeyPatch) -> None:
    async with FakeDiscord(callback_deadline=0.0) as server:
        assert isinstance(server, FakeDiscord)
        point_discord_py_at(server, monkeypatch)
        async with run_bot(server, make_bot()) as running:
            await server.inject_interaction(p.slash_command("progress"))
            tree = running.tree
            assert isinstance(tree, RecordingTree)
            [error] = await server.wait_for(lambda: tree.errors)
            assert isinstance(error, discord.NotFound) and error.code == 10062


async def test_autosharded_bot_finds_the_gateway_via_gateway_bot(
        monkeypatch: pytest.MonkeyPatch) -> None:
    async with FakeDiscord(shards=2) as server:
        assert isinstance(server, FakeDiscord)
        point_discord_py_at(server, monkeypatch)
        monkeypatch.setattr(discord.gateway.DiscordWebSocket, "DEFAULT_GATEWAY",
                            yarl.URL("ws://127.0.0.1:9/nowhere"))
        bot = make_bot(commands.AutoShardedBot)

        async def no_identify_pause(shard_id: int | None, *, initial: bool = False) -> None:
            """discord.py waits 5 s before each IDENTIFY but the first one."""

        bot.before_identify_hook = no_identify_pause  # type: ignore[method-assign]
        async with run_bot(server, bot):
            await server.wait_for(lambda: len(server.gateway.identifies) == 2)
            assert sorted(tuple(i["shard"]) for i in server.gateway.identifies) == [(0, 2), (1, 2)]
            rec = await server.inject_interaction(p.slash_command(
                "img2img", {"image": server.add_attachment("a.png", png_bytes()), "prompt": "s"}))
            await server.wait_for(lambda: server.followups(rec.token))
        assert ("GET", "/gateway/bot") in [(c.method, c.path) for c in server.calls]


async def test_resume_after_reconnect_request(fake: FakeDiscord, bot: commands.Bot) -> None:
    await fake.reconnect()
    session = fake.gateway.sessions[0]
    await fake.wait_for(lambda: session.resumes == 1 and session.live)
    rec = await fake.inject_interaction(p.slash_command("settings set", {"key": "k", "value": "v"}))
    await fake.wait_for(lambda: fake.original(rec.token))
    assert len(fake.gateway.identifies) == 1


def test_payload_builders_are_realistic() -> None:
    att = {"id": "1", "filename": "a.png", "url": "http://127.0.0.1/a.png", "size": 3}
    cmd = p.slash_command("settings set", {"key": "k", "image": att, "n": 2, "x": 0.5, "b": True})
    sub = cmd["data"]["options"][0]
    assert (sub["name"], sub["type"]) == ("set", p.SUB_COMMAND)
    assert [o["type"] for o in sub["options"]] == [3, 11, 4, 10, 5]
    assert cmd["data"]["resolved"]["attachments"]["1"] == att
    assert int(cmd["member"]["permissions"]) & 0x20 == 0
    admin = p.slash_command("img2img-admin policy set", {"v": "1"}, user=ADMIN)
    assert admin["data"]["options"][0]["type"] == p.SUB_COMMAND_GROUP
    assert int(admin["member"]["permissions"]) & 0x20
    assert p.interaction(2, {}, guild=None)["context"] == 1
    img = Image.open(io.BytesIO(png_bytes()))
    assert img.size == (64, 48)
