"""Without PostgreSQL the tests skip and say how to run them; in CI they fail instead."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Loaded into the inner pytest: this machine's PostgreSQL binaries are not found.
HIDE_POSTGRES = "import tests.postgres_server\ntests.postgres_server.find_bindir = lambda: None\n"


async def inner_pytest(tmp: Path, **env: str) -> tuple[int, str]:
    (tmp / "hide_postgres.py").write_text(HIDE_POSTGRES)
    environ = {k: v for k, v in os.environ.items()
               if k not in ("CI", "IMG2IMG_TEST_POSTGRES_URL")}
    environ.update(env, PYTHONPATH=f"{tmp}{os.pathsep}{ROOT}")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pytest", "-q", "-rs", "-p", "hide_postgres", "-p",
        "no:cacheprovider", "tests/storage/test_contract.py::test_grant_and_negative_grant",
        cwd=ROOT, env=environ, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode is not None
    return proc.returncode, out.decode()


async def test_without_a_server_postgres_tests_skip_and_say_how_to_run_them(
        tmp_path: Path) -> None:
    code, out = await inner_pytest(tmp_path)
    assert code == 0, out
    assert "1 passed, 1 skipped" in out
    assert "apt-get install postgresql" in out and "IMG2IMG_TEST_POSTGRES_URL" in out


async def test_in_ci_a_missing_server_fails_the_postgres_tests(tmp_path: Path) -> None:
    code, out = await inner_pytest(tmp_path, CI="1")
    assert code == 1, out
    assert "1 passed, 1 error" in out and "PostgreSQL is required in CI" in out
