"""``img2img-bot doctor`` names each cause: URL, HTTP status or connection error, remedy."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import SecretStr

from adapters.discord.doctor import check
from bot.config import DiscordConfig
from tests.fakes.a1111 import FakeA1111
from tests.fakes.discord_api import FakeDiscord
from tests.fakes.telegram_api import TOKEN, FakeTelegram
from tests.telegram.bot_process import free_port
from tests.test_cli import cli


def doctor_config(tmp: Path, telegram: str, refusing: str, locked: str, token: str) -> Path:
    path = tmp / "config.toml"
    path.write_text(f"""
[storage]
url = "sqlite:///{tmp / 'bot.db'}"

[telegram]
token = "{token}"
api_base = "{telegram}"

[providers.down]
type = "a1111"
url = "{refusing}"
retries = 1

[providers.locked]
type = "a1111"
url = "{locked}"
username = "bot"
password = "wrong-password"
retries = 1
""")
    return path


async def test_doctor_names_every_cause_and_fails(tmp_path: Path) -> None:
    refusing = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    async with FakeTelegram(token=TOKEN) as telegram, \
            FakeA1111(auth=("bot", "right-password")) as locked:
        config = doctor_config(tmp_path, telegram.base_url, refusing,
                               locked.base_url.replace("http://", "http://bot:pw@"),
                               "999999:REJECTED-BY-THE-FAKE-API-xxxxxxxxxx")
        code, stdout, stderr = await cli(config, "doctor")
        json_code, json_out, _ = await cli(config, "doctor", "--json")
    assert code == 1, stdout + stderr
    lines = {line.split(":")[0]: line for line in stdout.splitlines()}
    down = lines["provider down (a1111)"]
    assert "FAILED - connection refused" in down and f"at {refusing}/sdapi/v1/" in down
    assert "start the service, or fix url" in down
    refused = lines["provider locked (a1111)"]
    assert "FAILED - HTTP 401 Unauthorized" in refused and "check username and password" in refused
    assert f"at {locked.base_url}/sdapi/v1/" in refused and "bot:pw@" not in refused
    assert "wrong-password" not in stdout
    bot = lines["telegram"]
    assert "FAILED - getMe: HTTP 401 Unauthorized" in bot and "@BotFather" in bot
    assert "REJECTED-BY-THE-FAKE-API" not in stdout
    assert lines["storage"].startswith("storage: ok")

    assert json_code == 1
    report = json.loads(json_out)
    assert report["ok"] is False
    checks = {check["part"]: check for check in report["checks"]}
    assert checks["provider down (a1111)"]["cause"].startswith("connection refused")
    assert checks["provider locked (a1111)"]["cause"].startswith("HTTP 401")
    assert checks["telegram"]["ok"] is False and checks["storage"]["ok"] is True


async def test_doctor_passes_and_names_the_bot_when_everything_answers(tmp_path: Path) -> None:
    async with FakeTelegram(token=TOKEN, username="doctor_test_bot") as telegram, \
            FakeA1111() as open_webui, FakeA1111(auth=("bot", "wrong-password")) as webui:
        config = doctor_config(tmp_path, telegram.base_url, open_webui.base_url,
                               webui.base_url, TOKEN)
        code, stdout, stderr = await cli(config, "doctor")
    assert code == 0, stdout + stderr
    assert "telegram: ok (@doctor_test_bot" in stdout
    assert "FAILED" not in stdout


async def test_doctor_asks_discord_who_the_bot_is() -> None:
    async with FakeDiscord() as fake:
        right = await check(DiscordConfig(token=SecretStr(fake.token), api_base=fake.api_base))
        wrong = await check(DiscordConfig(token=SecretStr("not-the-token"),
                                          api_base=fake.api_base))
    assert right.ok and right.summary.startswith("ok (") and "id " in right.summary
    assert not wrong.ok and "HTTP 401" in (wrong.cause or "")
    assert "Reset Token" in (wrong.remedy or "") and "not-the-token" not in wrong.line()
    assert wrong.url == f"{fake.api_base}/users/@me"
