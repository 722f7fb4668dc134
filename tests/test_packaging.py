"""The distribution as a user gets it: the wheel's contents and the Dockerfile's inputs."""

from __future__ import annotations

import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                    "--no-build-isolation", "--wheel-dir", str(out), str(ROOT)],
                   check=True, capture_output=True, timeout=300)
    (built,) = out.glob("img2img_bot-*.whl")
    return built


def test_the_wheel_holds_every_package_and_migration(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for migration in (ROOT / "storage" / "migrations").glob("*.sql"):
        assert f"storage/migrations/{migration.name}" in names
    for package in ("bot", "bot/providers", "adapters/telegram", "adapters/discord", "storage"):
        assert f"{package}/__init__.py" in names
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "img2img-bot = bot.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()
    assert not any(n.startswith("tests/") for n in names)


def test_every_runtime_dependency_has_an_upper_bound() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = project["dependencies"] + project["optional-dependencies"]["local"]
    names = [dep.split(">")[0].split("<")[0].split("=")[0].lower() for dep in runtime]
    assert len(names) == len(set(names)), "a dependency is listed twice"
    assert all("<" in dep for dep in runtime), [dep for dep in runtime if "<" not in dep]
    dev = [dep.split(">")[0].lower() for dep in project["optional-dependencies"]["dev"]]
    assert not set(dev) & set(names), "a runtime dependency is repeated in the dev extra"
