"""The CLI as a user runs it: a real process against a fake A1111 server."""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal
import sqlite3
import sys
from pathlib import Path

from PIL import Image

from tests.fakes.a1111 import FakeA1111
from tests.fakes.server import jpeg_bytes
from tests.texts import en


def write_config(tmp: Path, url: str) -> Path:
    path = tmp / "config.toml"
    path.write_text(f"""
[storage]
url = "sqlite:///{tmp / 'bot.db'}"

[credits]
initial = 10
daily_free = 0

[jobs]
lease = 1.0
heartbeat = 0.25

[defaults]
provider = "webui"

[providers.webui]
type = "a1111"
url = "{url}"
cost = 1
timeout = 60
""")
    return path


async def cli(config: Path | None, *args: str, timeout: float = 60) -> tuple[int, str, str]:
    before = ("--config", str(config)) if config is not None else ()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", *before, *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_transform_writes_the_result_and_charges(tmp_path: Path) -> None:
    async with FakeA1111() as fake:
        config = write_config(tmp_path, fake.base_url)
        photo = tmp_path / "photo.jpg"
        photo.write_bytes(jpeg_bytes((640, 480)))
        out = tmp_path / "out.png"
        code, stdout, stderr = await cli(config, "transform", str(photo), "oil painting",
                                         "--seed", "77", "--strength", "0.5", "-o", str(out))
        assert code == 0, stderr
        assert stdout.strip() == str(out)
        assert "seed 77, cost 1, balance 9" in stderr
        image = Image.open(io.BytesIO(out.read_bytes()))
        body = fake.img2img_bodies[0]
        assert image.size == (body["width"], body["height"])
        assert body["prompt"] == "oil painting" and body["seed"] == 77
        assert body["denoising_strength"] == 0.5
        code, stdout, _ = await cli(config, "credits", "show", "local:cli", "--json")
        ledger = json.loads(stdout)
        assert ledger["balance"] == 9
        assert [e["kind"] for e in ledger["ledger"]] == ["reserve", "initial"]


async def test_config_is_accepted_after_the_subcommand(tmp_path: Path) -> None:
    async with FakeA1111() as fake:
        config = write_config(tmp_path, fake.base_url)
        photo = tmp_path / "photo.jpg"
        photo.write_bytes(jpeg_bytes())
        out = tmp_path / "out.png"
        code, stdout, stderr = await cli(None, "transform", str(photo), "ink", "--seed", "3",
                                         "-o", str(out), "--config", str(config))
        assert code == 0, stderr
        assert stdout.strip() == str(out) and fake.img2img_bodies[0]["seed"] == 3
        code, stdout, stderr = await cli(None, "credits", "show", "local:cli",
                                         "--config", str(config))
        assert code == 0 and "local:cli: balance 9" in stdout, stderr


async def test_bad_option_is_a_clear_error_and_costs_nothing(tmp_path: Path) -> None:
    async with FakeA1111() as fake:
        config = write_config(tmp_path, fake.base_url)
        photo = tmp_path / "photo.jpg"
        photo.write_bytes(jpeg_bytes())
        code, _, stderr = await cli(config, "transform", str(photo), "x", "--steps", "999",
                                    "-o", str(tmp_path / "o.png"))
        assert code == 2
        assert en("error-number-whole", option="--steps", low=1, high=150) in stderr
        assert fake.img2img_bodies == []


async def test_credits_grant_and_doctor(tmp_path: Path) -> None:
    async with FakeA1111() as fake:
        config = write_config(tmp_path, fake.base_url)
        code, _, stderr = await cli(config, "credits", "show", "telegram:5")
        assert code == 1 and "no such user" in stderr  # looking creates nobody
        code, stdout, _ = await cli(config, "credits", "grant", "telegram:5", "7")
        assert code == 0 and "telegram:5: balance 17" in stdout  # welcome 10 + 7
        code, stdout, _ = await cli(config, "doctor")
        assert code == 0 and "provider webui (a1111)" in stdout and "FAILED" not in stdout
    code, stdout, _ = await cli(config, "doctor")
    assert code == 1 and "FAILED" in stdout


async def test_sigkill_mid_job_is_refunded_at_restart(tmp_path: Path) -> None:
    async with FakeA1111(delay=3) as fake:
        config = write_config(tmp_path, fake.base_url)
        photo = tmp_path / "photo.jpg"
        photo.write_bytes(jpeg_bytes())
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "--config", str(config), "transform", str(photo),
            "slow one", "-o", str(tmp_path / "o.png"),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
        for _ in range(300):
            if fake.img2img_bodies:
                break
            await asyncio.sleep(0.05)
        assert fake.img2img_bodies, "the job never reached the backend"
        os.kill(proc.pid, signal.SIGKILL)
        await proc.wait()
        db = sqlite3.connect(tmp_path / "bot.db")
        assert db.execute("SELECT status, charge FROM jobs").fetchall() == [("running", "held")]
        assert db.execute("SELECT balance FROM users").fetchall() == [(9,)]
        db.close()
        fake.delay = 0
        await asyncio.sleep(1.2)  # the dead process's lease runs out
        code, _, stderr = await cli(config, "transform", str(photo), "again",
                                    "-o", str(tmp_path / "o.png"))
        assert code == 0, stderr
    db = sqlite3.connect(tmp_path / "bot.db")
    rows = db.execute("SELECT status, charge, error FROM jobs ORDER BY created_at").fetchall()
    assert rows == [("failed", "refunded", "interrupted"), ("delivered", "committed", None)]
    kinds = [r[0] for r in db.execute("SELECT kind FROM ledger ORDER BY id")]
    assert kinds == ["initial", "reserve", "refund", "reserve"]
    assert db.execute("SELECT balance FROM users").fetchall() == [(9,)]
    db.close()
