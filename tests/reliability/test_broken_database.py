"""A broken database stops every command at once: one line naming the file and the cause.

Each case is a real ``img2img-bot`` process against a real database file made by the bot and
then broken the way disks and operators break them:

- corrupt: the schema page overwritten with random bytes;
- truncated: the file cut to half its pages;
- read-only: the file's folder bind-mounted read-only (EROFS binds root too, unlike chmod);
- full: the file on a tmpfs that a filler file has filled to the last block, so SQLite's own
  writes get ENOSPC exactly as on a full disk;
- locked: another program holds the write lock.

The read-only and full cases need a private mount namespace (``unshare -Urm``, unprivileged
where user namespaces are enabled); where the kernel refuses one they are skipped, saying so.
"""

from __future__ import annotations

import asyncio
import logging
import random
import shlex
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from storage.sqlite import SQLiteStorage
from tests.fakes.a1111 import FakeA1111
from tests.fakes.server import png_bytes
from tests.fakes.telegram_api import FakeTelegram
from tests.telegram.conftest import USER_ID, make_settings, start_telegram
from tests.texts import warning

ROOT = Path(__file__).resolve().parents[2]
CAUSES = {
    "corrupt": "the file is corrupt or not an SQLite database",
    "truncated": "the file is corrupt or not an SQLite database",
    "read-only": "the file or its folder is read-only",
    "full": "the disk is full",
    "locked": "it is locked by another program",
}
COMMANDS = ["run", "transform", "credits", "doctor"]


def _namespaces_work() -> bool:
    """Whether ``unshare -Urm`` may mount a tmpfs here."""
    if shutil.which("unshare") is None:
        return False
    with tempfile.TemporaryDirectory() as folder:
        try:
            # Once a list literal, ruff saw a partial path (S607); it was found on PATH above.
            probe = ["unshare", "-Urm", "mount", "-t", "tmpfs", "-o", "size=16k", "tmpfs", folder]
            done = subprocess.run(probe, capture_output=True, timeout=10, check=False)
        except (OSError, subprocess.TimeoutExpired):
            return False
    return done.returncode == 0


NAMESPACES = _namespaces_work()


async def _make_database(path: Path) -> None:
    """A database as the bot leaves it: migrated, with a user, checkpointed and closed."""
    storage = SQLiteStorage(path)
    await storage.open()
    await storage.ensure_user("telegram:1", initial=10, daily_free=0, today="2026-01-01")
    await storage.close()
    assert not await asyncio.to_thread(Path(f"{path}-wal").exists)  # all in the main file


def _config(folder: Path, db: Path) -> Path:
    config = folder / "bot.toml"
    config.write_text(f"""
[storage]
url = "sqlite:///{db.as_posix()}"

[telegram]
token = "123456:TEST-token-never-used"
api_base = "http://127.0.0.1:9"

[defaults]
provider = "echo"

[providers.echo]
type = "echo"
""", encoding="utf-8")
    return config


def _argv(command: str, config: Path, folder: Path) -> list[str]:
    base = [sys.executable, "-m", "bot", "--config", str(config)]
    extra = {"run": ["run"],
             "transform": ["transform", str(folder / "in.png"), "a cat", "-o",
                           str(folder / "out.png")],
             "credits": ["credits", "show", "telegram:1"],
             "doctor": ["doctor"]}[command]
    return base + extra


@pytest.fixture
def locked_by_another_program() -> Iterator[list[sqlite3.Connection]]:
    holders: list[sqlite3.Connection] = []
    yield holders
    for conn in holders:
        conn.rollback()
        conn.close()


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("mode", list(CAUSES))
async def test_a_broken_database_fails_fast_with_one_line(
        mode: str, command: str, tmp_path: Path,
        locked_by_another_program: list[sqlite3.Connection]) -> None:
    if mode in ("read-only", "full") and not NAMESPACES:
        pytest.skip("this kernel gives no private mount namespace (unshare -Urm) for a "
                    "read-only or full filesystem")
    folder = tmp_path / "data"
    folder.mkdir()
    db = folder / "bot.db"
    await _make_database(db)
    (tmp_path / "in.png").write_bytes(png_bytes((64, 64)))
    data = bytearray(db.read_bytes())
    prefix: list[str] = []
    if mode == "corrupt":
        rng = random.Random(12)
        data[100:4096] = bytes(rng.randrange(256) for _ in range(3996))
        db.write_bytes(bytes(data))
    elif mode == "truncated":
        db.write_bytes(bytes(data[: len(data) // 2]))
    elif mode == "locked":
        holder = sqlite3.connect(db, isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")
        locked_by_another_program.append(holder)
    elif mode == "read-only":
        prefix = _in_namespace(f"mount --bind {_q(folder)} {_q(folder)} && "
                               f"mount -o remount,bind,ro {_q(folder)}")
    elif mode == "full":
        # The database goes back on a tmpfs just big enough, which a filler then fills.
        size = len(data) + 8 * 4096
        saved = tmp_path / "saved.db"
        db.rename(saved)
        prefix = _in_namespace(
            f"mount -t tmpfs -o size={size} tmpfs {_q(folder)} && cp {_q(saved)} {_q(db)} && "
            f"(dd if=/dev/zero of={_q(folder / 'filler')} bs=4096 2>/dev/null; true)")
    config = _config(tmp_path, db)

    started = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        *prefix, *_argv(command, config, tmp_path), cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        _, stderr = await asyncio.wait_for(proc.communicate(), 20)
    finally:
        if proc.returncode is None:
            proc.kill()
    elapsed = time.monotonic() - started

    lines = [line for line in stderr.decode().splitlines() if line.strip()]
    assert lines == [f"error: Cannot use the SQLite database {db}: {CAUSES[mode]}."], lines
    assert proc.returncode == 2
    print(f"{mode} / {command}: exit {proc.returncode} after {elapsed:.2f} s")
    assert elapsed < 5
    assert not (tmp_path / "out.png").exists()


def _q(path: Path) -> str:
    return shlex.quote(str(path))


def _in_namespace(setup: str) -> list[str]:
    """Run the command after ``setup`` inside a private user and mount namespace."""
    return ["unshare", "-Urm", "sh", "-c", f'{setup} && exec "$@"', "sh"]


async def test_a_database_locked_while_running_is_logged_once_and_users_are_told(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Another program takes the write lock while the bot runs, then lets it go."""
    async with FakeTelegram(username="img2img_test_bot") as fake, \
            FakeA1111(delay=0.05) as a1111:
        fake.add_chat(USER_ID)
        async with start_telegram(fake, a1111, make_settings(tmp_path, fake, a1111)) as tg:
            holder = sqlite3.connect(tmp_path / "bot.db", isolation_level=None)
            holder.execute("BEGIN EXCLUSIVE")
            try:
                update = tg.send(fake.build.photo(caption="/img2img a cat"))
                reply = await tg.reply(update, timeout=30)
            finally:
                holder.rollback()
                holder.close()
            assert reply.text == warning("error-storage-unavailable")
            errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
            assert errors == [f"Cannot use the SQLite database {tmp_path / 'bot.db'}: it is "
                              "locked by another program."]
            assert a1111.img2img_bodies == []
            again = tg.send(fake.build.photo(caption="/img2img a cat"))
            await tg.result(again, timeout=10)  # the lock is gone: the bot works again
            assert await tg.balance() == 9
