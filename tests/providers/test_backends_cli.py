"""Hosted backends as an operator meets them: ``doctor`` and ``transform`` in a real process."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from tests.fakes.aithriving import FakeAIThriving
from tests.fakes.modelslab import FakeModelsLab
from tests.fakes.scenario import FakeScenario
from tests.fakes.server import jpeg_bytes
from tests.texts import en

KEY = "backend-key-0123456789abcdef"


def write_config(tmp: Path, provider: str) -> Path:
    path = tmp / "config.toml"
    path.write_text(f"""
[storage]
url = "sqlite:///{tmp / 'bot.db'}"

[credits]
initial = 10
daily_free = 0

[defaults]
provider = "main"

[providers.main]
{provider}
api_key = "{KEY}"
timeout = 30
""")
    return path


async def cli(config: Path, *args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "--config", str(config), *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def transform(tmp: Path, config: Path, size: tuple[int, int] = (640, 480),
                    *options: str) -> tuple[int, str]:
    photo = tmp / "photo.jpg"
    photo.write_bytes(jpeg_bytes(size))
    code, _, stderr = await cli(config, "transform", str(photo), "a watercolor", *options,
                                "-o", str(tmp / "out.png"))
    return code, stderr


@pytest.mark.parametrize("reading", ["Authorization", "Authentication"])
async def test_aithriving_default_config_under_either_reading(tmp_path: Path,
                                                              reading: str) -> None:
    async with FakeAIThriving(KEY, header=reading) as fake:
        config = write_config(tmp_path, f'type = "aithriving"\nurl = "{fake.base_url}"')
        code, stdout, _ = await cli(config, "doctor")
        assert code == 0, stdout
        assert f"key accepted in the {reading} header" in stdout
        code, stderr = await transform(tmp_path, config)
        assert code == 0, stderr
        assert "cost 1, balance 9" in stderr and len(fake.images) == 1


async def test_modelslab_community_job_polls_the_documented_fetch(tmp_path: Path) -> None:
    async with FakeModelsLab(KEY) as fake:
        fake.processing_polls, fake.eta = 2, 0.05
        config = write_config(tmp_path, f'type = "modelslab"\nurl = "{fake.base_url}/api"\n'
                              'endpoint = "community"\nmodel_id = "realistic-vision-v6"\n'
                              "poll_interval = 0.05")
        code, stderr = await transform(tmp_path, config)
        assert code == 0, stderr
        assert fake.fetches == 2 and fake.generations[0]["negative_prompt"] == ""
        # The modelslab-py route answers 404 on a server that follows the docs: a failed job.
        config.write_text(config.read_text() + 'community_fetch = "path"\n')
        code, stderr = await transform(tmp_path, config)
        assert code == 1
        assert f"error: {en('error-job-failed').removesuffix('.')}" in stderr
        refunded = en("failure-refunded", message="").strip().removesuffix(".")
        assert "rejected these settings" not in stderr and refunded in stderr


async def test_scenario_640x480_is_charged_what_help_quotes(tmp_path: Path) -> None:
    async with FakeScenario(KEY, "scenario-secret-0123456789") as fake:
        config = write_config(tmp_path, f'type = "scenario"\nurl = "{fake.base_url}/v1"\n'
                              'api_secret = "scenario-secret-0123456789"\npoll_interval = 0.05')
        code, stderr = await transform(tmp_path, config)
        assert code == 0, stderr
        body = fake.generations[0]
        assert body["width"] * body["height"] <= 1024 * 1024  # 1176x888, not 1184x888
        assert "cost 1, balance 9" in stderr
