"""Gateway and worker processes on one database: the gateway answers Discord, the worker runs
the job and delivers it through the REST API (the interaction's webhook, else the channel)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import replace
from functools import partial
from pathlib import Path

from storage import Storage, open_storage
from storage.base import JobRecord
from tests.discord.helpers import ask, finished
from tests.discord.test_run_command import write_config
from tests.fakes.a1111 import FakeA1111
from tests.fakes.discord_api import FakeDiscord
from tests.fakes.discord_model import FakeMessage
from tests.fakes.discord_world import EVERYONE_ROLE, GENERAL, GUILD, MEMBER, MODS_ROLE, FakeChannel

STARTUP = 30.0  # a cold interpreter on a busy machine


class BotProcess:
    """``img2img-bot run --role ROLE`` as a real process; its log goes to a file."""

    def __init__(self, proc: asyncio.subprocess.Process, log: Path) -> None:
        self.proc = proc
        self.log_path = log

    @property
    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    async def stop(self) -> int:
        """SIGTERM, as a supervisor stops it; returns the exit status."""
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
        return await asyncio.wait_for(self.proc.wait(), 20)


@contextlib.asynccontextmanager
async def role(config: Path, name: str, env: Mapping[str, str] | None = None,
               ) -> AsyncIterator[BotProcess]:
    log = config.parent / f"{name}-{time.monotonic_ns()}.log"
    with log.open("wb") as sink:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "--config", str(config), "run", "--role", name,
            stdout=asyncio.subprocess.DEVNULL, stderr=sink, env={**os.environ, **(env or {})})
    try:
        yield BotProcess(proc, log)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


@contextlib.asynccontextmanager
async def database(tmp: Path) -> AsyncIterator[Storage]:
    storage = open_storage(f"sqlite:///{tmp / 'bot.db'}")
    await storage.open()
    try:
        yield storage
    finally:
        await storage.close()


async def only_job(tmp: Path) -> JobRecord:
    """The one job the member asked for, as stored."""
    async with database(tmp) as storage:
        [entry] = [e for e in await storage.ledger(f"discord:{MEMBER.id}", 10)
                   if e.kind == "reserve"]
        job = await storage.get_job(entry.job_id or "")
    assert job is not None
    return job


def shows(fake: FakeDiscord, token: str, text: str) -> bool:
    return (msg := fake.original(token)) is not None and text in msg.content


def ended(fake: FakeDiscord, token: str) -> FakeMessage | None:
    return finished(fake.original(token))


def shards(*ids: int, count: int = 2) -> dict[str, str]:
    """The environment that gives a gateway its share of the shards."""
    return {"IMG2IMG_DISCORD__SHARD_IDS": json.dumps(list(ids)),
            "IMG2IMG_DISCORD__SHARD_COUNT": str(count)}


def webhook_calls(fake: FakeDiscord, token: str) -> list[tuple[str, int]]:
    return [(c.method, c.status) for c in fake.calls
            if c.path.startswith("/webhooks/") and token in c.path]


async def test_the_worker_delivers_what_the_gateway_accepted_through_the_webhook(
        tmp_path: Path, fake: FakeDiscord, a1111: FakeA1111) -> None:
    config = write_config(tmp_path, fake, a1111, log_level="DEBUG")
    async with role(config, "gateway") as gateway:
        rec = await ask(fake, {"prompt": "a lighthouse"}, timeout=STARTUP)
        queued = await fake.wait_for(lambda: (m := fake.original(rec.token)) and
                                     "⏳" in m.content and m, STARTUP)
        await asyncio.sleep(1.0)
        assert a1111.img2img_bodies == [] and finished(fake.original(rec.token)) is None
        async with role(config, "worker") as worker:
            result = await fake.wait_for(lambda: finished(fake.original(rec.token)), STARTUP)
            assert result.id == queued.id and result.embed is not None
            assert result.file().startswith(b"\x89PNG")
            assert result.embed.get("description") == "a lighthouse"
            assert await worker.stop() == 0
        assert await gateway.stop() == 0
    assert len(fake.gateway.identifies) == 1  # the worker never connected to the gateway
    assert [m for m in fake.channel_messages(GENERAL.id) if m.interaction_token is None] == []
    job = await only_job(tmp_path)
    assert job.status == "delivered" and job.charge == "committed"
    assert job.delivery_ref == str(result.id)
    assert "secret" not in job.origin  # the interaction token went with the job's end
    for log in (gateway.log, worker.log):
        assert "Traceback" not in log, log
        assert rec.token not in log and fake.token not in log
    assert "/webhooks/111111111111111111/***" in worker.log  # discord.py's lines, masked


async def test_past_the_token_s_15_minutes_the_worker_posts_in_the_channel(
        tmp_path: Path, fake: FakeDiscord, a1111: FakeA1111) -> None:
    config = write_config(tmp_path, fake, a1111)
    async with role(config, "worker"), role(config, "gateway"):
        # Asked 16 minutes ago: Discord no longer takes its token; the bot token still works.
        rec = await ask(fake, {"prompt": "an old lighthouse"}, timeout=STARTUP,
                        created_at=time.time() - 16 * 60)

        def posted() -> FakeMessage | None:
            return next((m for m in fake.channel_messages(GENERAL.id)
                         if m.interaction_token is None and m.embeds), None)

        message = await fake.wait_for(posted, STARTUP)
    assert message.content == f"<@{MEMBER.id}>" and message.file().startswith(b"\x89PNG")
    # At most the gateway's one try to show "queued"; the worker knew the token was too old.
    assert [status for _, status in webhook_calls(fake, rec.token)] in ([], [401])
    job = await only_job(tmp_path)
    assert job.status == "delivered" and job.charge == "committed"
    assert job.delivery_ref == str(message.id) and "secret" not in job.origin


async def test_a_result_discord_refuses_is_refunded_not_charged(
        tmp_path: Path, fake: FakeDiscord, a1111: FakeA1111) -> None:
    config = write_config(tmp_path, fake, a1111)
    fake.fail_next("POST", r"^/channels/\d+/messages$", 403)
    async with role(config, "worker"), role(config, "gateway"):
        await ask(fake, timeout=STARTUP, created_at=time.time() - 16 * 60)
        notice = await fake.wait_for(lambda: next(
            (m for m in fake.channel_messages(GENERAL.id) if m.interaction_token is None), None),
            STARTUP)
    assert notice.content.startswith(f"<@{MEMBER.id}> ") and "refunded" in notice.content
    job = await only_job(tmp_path)
    assert job.status == "expired" and job.charge == "refunded"
    async with database(tmp_path) as storage:
        assert await storage.balance(f"discord:{MEMBER.id}") == 20



SECOND_ID = GUILD.id + (1 << 22)  # Discord's formula: (guild_id >> 22) % shard_count
SECOND = replace(GUILD, id=SECOND_ID, name="Second Guild",
                 channels=(FakeChannel(SECOND_ID + 1, "general", SECOND_ID),),
                 roles=(replace(EVERYONE_ROLE, id=SECOND_ID), MODS_ROLE))


async def test_two_gateways_answer_their_own_shards_and_a_worker_delivers(
        tmp_path: Path, a1111: FakeA1111) -> None:
    assert [(g.id >> 22) % 2 for g in (GUILD, SECOND)] == [0, 1]
    async with FakeDiscord(guilds=(GUILD, SECOND), shards=2) as fake:
        assert isinstance(fake, FakeDiscord)
        config = write_config(tmp_path, fake, a1111)
        async with role(config, "gateway", shards(0)), role(config, "gateway", shards(1)):
            await fake.wait_for(lambda: len(fake.gateway.live_sessions) == 2, STARTUP)
            first = await ask(fake, {"prompt": "first guild"}, channel=GENERAL)
            second = await ask(fake, {"prompt": "second guild"}, guild=SECOND,
                               channel=SECOND.channels[0])
            for rec in (first, second):  # each was answered (deferred) by its shard's gateway
                await fake.wait_for(partial(shows, fake, rec.token, "⏳"), STARTUP)
            await asyncio.sleep(1.0)
            assert a1111.img2img_bodies == []  # gateways only queue
            async with role(config, "worker"):
                for rec, prompt in ((first, "first guild"), (second, "second guild")):
                    msg = await fake.wait_for(partial(ended, fake, rec.token), STARTUP)
                    assert msg.embed is not None and msg.embed.get("description") == prompt
        by_shard = {session.shard: session for session in fake.gateway.sessions}
        assert sorted(by_shard) == [(0, 2), (1, 2)] and len(fake.gateway.sessions) == 2
        for shard_id, guild, rec in ((0, GUILD, first), (1, SECOND, second)):
            sent = by_shard[(shard_id, 2)].sent
            [ready] = [f["d"] for f in sent if f["t"] == "READY"]
            assert [g["id"] for g in ready["guilds"]] == [str(guild.id)]
            asked = [f["d"]["id"] for f in sent if f["t"] == "INTERACTION_CREATE"]
            assert asked == [str(rec.id)]  # its own guild's interaction, not the other's
