"""Choosing PostgreSQL by URL, from the file or the environment, and keeping its password out.

The CLI runs as a real process against the test server: ``transform`` charges on PostgreSQL,
``doctor`` reports it with the password masked, and a refused login or an unreachable server
is one clear line that never holds the password, even at DEBUG.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from bot.config import build_config
from bot.errors import ConfigError, StorageUnavailable
from bot.redact import redact, redact_url
from bot.store import core_storage
from storage import PostgresStorage, SQLiteStorage, open_storage
from tests.fakes.a1111 import FakeA1111
from tests.fakes.server import jpeg_bytes
from tests.postgres_server import find_bindir, start_temporary

PG_URL = "postgresql://bot:S3cret-pg-Pa55@db.internal:5432/img2img"


def test_redact_url_masks_the_password_wherever_it_sits() -> None:
    assert redact_url(PG_URL) == "postgresql://bot:***@db.internal:5432/img2img"
    assert redact_url("postgres://bot:p%40ss/w@h/db") == "postgres://bot:***@h/db"
    assert (redact_url("postgresql://h/db?user=bot&password=x%26y&sslmode=require")
            == "postgresql://h/db?user=bot&password=***&sslmode=require")
    assert redact_url("sqlite:///data/img2img.db") == "sqlite:///data/img2img.db"


def test_storage_url_from_the_environment() -> None:
    file = {"storage": {"url": "sqlite:///from-file.db"}}
    assert build_config(file, {"IMG2IMG_STORAGE__URL": PG_URL}).storage.url == PG_URL
    assert build_config({}, {"DATABASE_URL": PG_URL}).storage.url == PG_URL
    # DATABASE_URL is a platform-wide convention: an explicit file setting wins over it.
    assert build_config(file, {"DATABASE_URL": PG_URL}).storage.url == "sqlite:///from-file.db"
    both = {"IMG2IMG_STORAGE__URL": "sqlite:///a.db", "DATABASE_URL": PG_URL}
    assert build_config({}, both).storage.url == "sqlite:///a.db"
    assert build_config({}, {}).storage.url == "sqlite:///data/img2img.db"


def test_the_composition_root_picks_the_backend_by_scheme() -> None:
    assert isinstance(open_storage(PG_URL), PostgresStorage)
    assert isinstance(open_storage("postgres://bot@h/db"), PostgresStorage)
    assert isinstance(open_storage("sqlite:///x.db"), SQLiteStorage)


def test_an_unknown_scheme_is_named_without_the_url() -> None:
    with pytest.raises(ConfigError) as info:
        build_config({"storage": {"url": "mysql://bot:S3cret-pg-Pa55@h/db"}}, {})
    assert "storage.url" in info.value.user_message and "'mysql'" in info.value.user_message
    assert "S3cret-pg-Pa55" not in info.value.user_message


def test_a_configured_password_is_redacted_from_any_text() -> None:
    config = build_config({}, {"DATABASE_URL": "postgresql://bot:Zq%2Fw9-unique-pw@h/db"})
    assert "Zq/w9-unique-pw" not in redact("asyncpg said: Zq/w9-unique-pw")
    assert "Zq%2Fw9-unique-pw" not in redact(config.storage.url)
    assert config.storage.display_url == "postgresql://bot:***@h/db"


def _password(url: str) -> str:
    return url.partition("://")[2].rpartition("@")[0].partition(":")[2]


async def test_a_refused_login_names_the_database_but_not_the_password(
        postgres_server: str) -> None:
    wrong = postgres_server.replace(f":{_password(postgres_server)}@", ":Wr0ng-Pa55word@")
    with pytest.raises(StorageUnavailable) as info:
        await core_storage(PostgresStorage(wrong)).open()
    detail = info.value.detail
    assert "password authentication failed" in detail and redact_url(wrong) in detail
    assert info.value.user_message == StorageUnavailable.default_message
    for text in (detail, str(info.value)):
        assert "Wr0ng-Pa55word" not in text and _password(postgres_server) not in text
    assert info.value.__cause__ is None and info.value.__suppress_context__


async def test_an_unreachable_server_is_one_clear_error(unused_tcp_port: int) -> None:
    url = f"postgresql://bot:Unreach-Pa55@127.0.0.1:{unused_tcp_port}/db"
    with pytest.raises(StorageUnavailable) as info:
        await core_storage(PostgresStorage(url, connect_timeout=5)).open()
    assert info.value.detail == (f"Cannot use the PostgreSQL database postgresql://bot:***@"
                                 f"127.0.0.1:{unused_tcp_port}/db: the server refused the "
                                 "connection (is PostgreSQL running there?).")


async def test_an_outage_while_running_is_logged_once_and_passes(
        caplog: pytest.LogCaptureFixture) -> None:
    bindir = find_bindir()
    if bindir is None:
        pytest.skip("needs PostgreSQL's binaries (stops and starts a server of its own)")
    server = await asyncio.to_thread(start_temporary, bindir)
    store = core_storage(PostgresStorage(server.url, connect_timeout=5))
    try:
        await store.open()
        await store.grant("telegram:1", 5)
        await asyncio.to_thread(server.pause)
        for _ in range(3):
            with pytest.raises(StorageUnavailable) as info:
                await store.grant("telegram:1", 1)
            assert info.value.user_message == StorageUnavailable.default_message
            assert redact_url(server.url) in info.value.detail
        logged = [r.getMessage() for r in caplog.records if r.name == "storage.postgres.driver"]
        assert len(logged) == 1 and logged[0] == info.value.detail
        assert _password(server.url) not in caplog.text
        await asyncio.to_thread(server.resume)
        assert await store.grant("telegram:1", 1) == 6  # the pool reconnects by itself
        assert await store.drift() == []
    finally:
        await store.close()
        await asyncio.to_thread(server.stop)


def write_config(tmp: Path, storage_url: str, webui: str) -> Path:
    path = tmp / "config.toml"
    path.write_text(f"""
log_level = "DEBUG"

[storage]
url = "{storage_url}"

[credits]
initial = 10
daily_free = 0

[providers.webui]
type = "a1111"
url = "{webui}"
cost = 1
""")
    return path


async def cli(config: Path, *args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "--config", str(config), *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(), 90)
    assert proc.returncode is not None
    return proc.returncode, out.decode()


async def test_cli_runs_on_postgres_and_never_prints_its_password(
        postgres_url: str, tmp_path: Path) -> None:
    password = _password(postgres_url)
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(jpeg_bytes())
    async with FakeA1111() as fake:
        config = write_config(tmp_path, postgres_url, fake.base_url)
        code, out = await cli(config, "transform", str(photo), "oil", "-o",
                              str(tmp_path / "o.png"))
        assert code == 0, out
        assert "seed" in out and "balance 9" in out
        code, shown = await cli(config, "credits", "show", "local:cli", "--json")
        assert code == 0 and '"balance": 9' in shown
        code, doctor = await cli(config, "doctor")
        assert code == 0, doctor
        assert f"storage: ok ({redact_url(postgres_url)}, 1 users)" in doctor
        refused = write_config(tmp_path, postgres_url.replace(password, "N0pe-Pa55word"),
                               fake.base_url)
        code, failed = await cli(refused, "doctor")
    assert code == 2 and "error: Cannot use the PostgreSQL database" in failed
    for text in (out, shown, doctor, failed):
        assert password not in text and "N0pe-Pa55word" not in text
    assert (tmp_path / "o.png").exists()
    store = PostgresStorage(postgres_url)
    await store.open()
    try:
        assert [e.kind for e in await store.ledger("local:cli")] == ["reserve", "initial"]
        assert await store.drift() == []
    finally:
        await store.close()
