"""``img2img-bot run`` as a real process: its environment, its log, a clean stop."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator, Iterable, Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Any request to a host outside 127.0.0.1 goes to this closed port and is refused, so a
# default that points at the internet (the AI Horde) fails fast instead of reaching it.
BLACKHOLE_PROXY = "http://127.0.0.1:9"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def base_environment() -> dict[str, str]:
    """What any process needs (PATH, the source tree) and nothing of the bot's config."""
    return {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT),
            "HTTP_PROXY": BLACKHOLE_PROXY, "HTTPS_PROXY": BLACKHOLE_PROXY,
            "ALL_PROXY": BLACKHOLE_PROXY, "NO_PROXY": "127.0.0.1,localhost"}


class BotProcess:
    """A running ``img2img-bot`` whose stderr is read as it comes."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.lines: list[str] = []
        self._changed = asyncio.Event()
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.process.stderr is not None
        async for raw in self.process.stderr:
            self.lines.append(raw.decode(errors="replace").rstrip("\n"))
            self._changed.set()
        self._changed.set()

    @property
    def log(self) -> str:
        return "\n".join(self.lines)

    async def wait_for_log(self, text: str, timeout: float = 30) -> str:
        """The first log line containing ``text``."""
        async with asyncio.timeout(timeout):
            while True:
                for line in self.lines:
                    if text in line:
                        return line
                if self._reader.done():
                    raise AssertionError(f"the bot exited before logging {text!r}:\n{self.log}")
                self._changed.clear()
                await self._changed.wait()

    async def stop(self) -> int:
        """SIGTERM, then the exit code."""
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            code = await asyncio.wait_for(self.process.wait(), 20)
        finally:
            if self.process.returncode is None:
                self.process.kill()
                await self.process.wait()
        await self._reader
        return code


async def stop_all(processes: Iterable[asyncio.subprocess.Process], grace: float = 15) -> None:
    """SIGTERM to every process still running, then wait; one that outlasts ``grace`` is killed."""
    processes = list(processes)
    for process in processes:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            await asyncio.wait_for(process.wait(), grace)
        except TimeoutError:
            process.kill()
            await process.wait()


@contextlib.asynccontextmanager
async def bot_process(*args: str, environ: Mapping[str, str], cwd: Path
                      ) -> AsyncIterator[BotProcess]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", *args, cwd=cwd, env={**base_environment(), **environ},
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    running = BotProcess(process)
    try:
        yield running
    finally:
        if process.returncode is None:
            await running.stop()
