"""The distribution as a user gets it: the wheel's contents and the Dockerfile's inputs."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web

from bot.config import load_config

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                    "--no-build-isolation", "--wheel-dir", str(out), str(ROOT)],
                   check=True, capture_output=True, timeout=300)
    (built,) = out.glob("img2img_bot-*.whl")
    return built


def test_the_wheel_holds_every_package_migration_and_catalogue(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for migration in (ROOT / "storage" / "migrations").glob("*.sql"):
        assert f"storage/migrations/{migration.name}" in names
    catalogues = sorted((ROOT / "bot" / "locales").glob("*.po"))
    assert len(catalogues) == 9
    for po in catalogues:
        assert f"bot/locales/{po.name}" in names
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


def _dockerfile() -> list[str]:
    """The Dockerfile's instructions, continuation lines joined."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    return [line.strip() for line in text.splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def _pip_commands(lines: list[str]) -> list[str]:
    """Every ``pip wheel`` / ``pip install`` command, without a venv's path in front."""
    found = []
    for line in lines:
        for part in line.split("&&"):
            words = part.split()
            for index, word in enumerate(words):
                if word.endswith("pip") and index + 1 < len(words) \
                        and words[index + 1] in ("wheel", "install"):
                    found.append(" ".join(["pip", *words[index + 1:]]))
    return found


def test_every_file_the_dockerfile_copies_exists() -> None:
    copies = [line.split()[1:] for line in _dockerfile() if line.startswith("COPY ")]
    assert copies
    for args in copies:
        if args[0].startswith("--from="):
            continue
        for source in args[:-1]:
            assert (ROOT / source).exists(), f"the Dockerfile copies {source}, which is missing"
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert not {"bot", "adapters", "storage", "pyproject.toml", "README.md"} & set(ignored)


def test_the_image_installs_the_wheel_as_ci_does() -> None:
    lines = _dockerfile()
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    ci_wheel = [c for c in _pip_commands(ci) if "dist" in c]
    docker = _pip_commands(lines)
    assert ci_wheel and all(command in docker for command in ci_wheel), (ci_wheel, docker)
    # The dependency layer comes before the source: a code change does not reinstall them.
    dependency_layer = next(i for i, line in enumerate(lines)
                            if "pip install --quiet -r requirements.txt" in line)
    runtime_stage = max(i for i, line in enumerate(lines) if line.startswith("FROM "))
    assert runtime_stage < dependency_layer
    assert all(not line.startswith("COPY ") or "pyproject.toml" in line
               for line in lines[runtime_stage:dependency_layer])
    # Its list of dependencies is the project's own.
    run = lines[dependency_layer]
    script = run.split('python -c "', 1)[1].split('" >', 1)[0]  # the shell passes it as is
    printed = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                             text=True, check=True).stdout.split()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert printed == project["dependencies"]


def test_the_image_runs_unprivileged_with_a_data_volume_and_a_health_check() -> None:
    lines = _dockerfile()
    runtime = lines[max(i for i, line in enumerate(lines) if line.startswith("FROM ")):]
    user = [line.split()[1] for line in runtime if line.startswith("USER ")]
    assert user and user[-1] not in ("root", "0")
    assert 'VOLUME ["/data"]' in runtime
    env = " ".join(line for line in runtime if line.startswith("ENV "))
    assert "IMG2IMG_STORAGE__URL=sqlite:////data/" in env
    assert "IMG2IMG_HTTP__ENABLED=true" in env and "IMG2IMG_HTTP__PORT=8080" in env
    health = next(line for line in runtime if line.startswith("HEALTHCHECK "))
    # urlopen raises on a 503 (or no answer), which makes the check fail.
    assert "urlopen('http://127.0.0.1:%s/healthz' % os.environ['IMG2IMG_HTTP__PORT']" in health
    assert not any(line.startswith("ENV ") and "IMG2IMG_CONFIG" in line for line in runtime)


async def test_the_health_check_command_passes_on_200_and_fails_on_503() -> None:
    health = next(line for line in _dockerfile() if line.startswith("HEALTHCHECK "))
    argv = json.loads(health.split(" CMD ", 1)[1])
    answer = {"status": 200}

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"ok": answer["status"] == 200}, status=answer["status"])

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        results = []
        for status in (200, 503):
            answer["status"] = status
            process = await asyncio.create_subprocess_exec(
                sys.executable, *argv[1:], env={"IMG2IMG_HTTP__PORT": str(port)},
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
            results.append(await asyncio.wait_for(process.wait(), 30))
    finally:
        await runner.cleanup()
    assert argv[0] == "python"
    assert results[0] == 0 and results[1] != 0


def _compose_environment(service: dict[str, Any]) -> dict[str, str]:
    """A service's environment as compose would pass it, with the operator's values filled."""
    given = {"TELEGRAM_BOT_TOKEN": "123:abc", "POSTGRES_PASSWORD": "pw"}
    return {key: re.sub(r"\$\{(\w+)[^}]*\}", lambda m: given[m.group(1)], str(value))
            for key, value in service.get("environment", {}).items()}


def test_the_compose_example_runs_two_gateways_and_a_worker_on_postgres() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8"))
    services = compose["services"]
    roles = {name: s["command"][s["command"].index("--role") + 1]
             for name, s in services.items() if s.get("command", [""])[0] == "img2img-bot"}
    assert sorted(roles.values()) == ["gateway", "gateway", "worker"]
    database = _compose_environment(services["postgres"])
    for name in roles:
        service = services[name]
        assert service["build"] == "."
        assert service["depends_on"]["postgres"]["condition"] == "service_healthy"
        config = load_config(None, _compose_environment(service))
        # Every process on the one database, by its service name, as its user and password.
        assert config.storage.url == (f"postgresql://{database['POSTGRES_USER']}:"
                                      f"{database['POSTGRES_PASSWORD']}@postgres:5432/"
                                      f"{database['POSTGRES_DB']}")
        assert config.telegram is not None and config.telegram.token is not None
        webui = config.provider_settings()["webui"]
        assert str(getattr(webui, "url", "")).rstrip("/") == "http://webui:7860"
    # The worker runs jobs on the WebUI; the WebUI listens beyond its own container.
    assert "webui" in services["worker"]["depends_on"]
    assert "--api" in services["webui"]["command"] and "--listen" in services["webui"]["command"]
    text = (ROOT / "compose.yaml").read_text(encoding="utf-8")
    assert "127.0.0.1:7860" not in text and "localhost" not in text
    assert "postgres-data:/var/lib/postgresql/data" in services["postgres"]["volumes"]

