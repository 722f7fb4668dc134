"""A throwaway PostgreSQL server for tests, started from the installed binaries.

Tests use ``$IMG2IMG_TEST_POSTGRES_URL`` when it is set (CI sets it); otherwise the session
starts its own cluster with ``initdb`` + ``pg_ctl`` (Debian's ``postgresql`` package, or any
``initdb`` on PATH) on a temporary directory and a loopback port, and stops it at the end.
Each test gets a fresh database on that server.

PostgreSQL refuses to run as root, so as root the cluster runs as the ``postgres`` system user
(which the Debian package creates), or ``nobody``.

CI uses the same code from the shell::

    python -m tests.postgres_server start DIR   # prints the URL
    python -m tests.postgres_server stop DIR
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg

URL_ENV = "IMG2IMG_TEST_POSTGRES_URL"
HOW_TO_RUN = (
    "install PostgreSQL (apt-get install postgresql: the tests then start their own server) "
    f"or set {URL_ENV}=postgresql://USER:PASSWORD@127.0.0.1:5432/postgres "
    "(a role that may CREATE DATABASE)"
)
SUPERUSER = "img2img"
# Test data is thrown away: durability settings off make CREATE DATABASE and commits fast.
SERVER_OPTIONS = ("-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
                  "-c max_connections=300")


def find_bindir() -> Path | None:
    """The directory holding ``initdb`` and ``pg_ctl``, newest version first; None if absent."""
    on_path = shutil.which("initdb")
    if on_path and shutil.which("pg_ctl"):
        return Path(on_path).parent
    debian = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"),
                    key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit()
                    else 0, reverse=True)
    for initdb in debian:
        if (initdb.parent / "pg_ctl").exists():
            return initdb.parent
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _server_user() -> pwd.struct_passwd | None:
    """Who runs the server: this user, or an unprivileged system user when this is root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise RuntimeError("running as root and no 'postgres' or 'nobody' user to run PostgreSQL")


@dataclass(frozen=True, slots=True)
class ThrowawayServer:
    """A cluster in ``base``: ``base/data`` is the data directory, ``base/url`` its URL."""

    base: Path
    bindir: Path

    @property
    def url(self) -> str:
        return (self.base / "url").read_text(encoding="utf-8").strip()

    def _run(self, *args: str) -> None:
        account = _server_user()
        kwargs = {} if account is None else {
            "user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}
        subprocess.run([str(self.bindir / args[0]), *args[1:]], check=True, cwd=self.base,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **kwargs)

    @classmethod
    def start(cls, base: Path, bindir: Path) -> ThrowawayServer:
        """initdb + pg_ctl start on a free loopback port, password (SCRAM) auth."""
        base.mkdir(parents=True, exist_ok=True)
        server = cls(base, bindir)
        password = secrets.token_urlsafe(18)
        pwfile = base / "pwfile"
        pwfile.write_text(password + "\n", encoding="utf-8")
        account = _server_user()
        if account is not None:
            for path in (base, pwfile):
                os.chown(path, account.pw_uid, account.pw_gid)
        server._run("initdb", "-D", str(base / "data"), "-U", SUPERUSER, "--pwfile", str(pwfile),
                    "--auth=scram-sha-256", "-E", "UTF8", "--locale=C")
        pwfile.unlink()
        for attempt in range(3):
            port = _free_port()
            try:
                server._pg_ctl_start(port)
            except subprocess.CalledProcessError:
                if attempt == 2:
                    log = (base / "server.log").read_text(encoding="utf-8", errors="replace")
                    raise RuntimeError(f"PostgreSQL did not start:\n{log[-2000:]}") from None
                continue
            break
        url = f"postgresql://{SUPERUSER}:{password}@127.0.0.1:{port}/postgres"
        (base / "url").write_text(url + "\n", encoding="utf-8")
        (base / "url").chmod(0o600)
        return server

    def _pg_ctl_start(self, port: int) -> None:
        options = f"-h 127.0.0.1 -p {port} -k {self.base} {SERVER_OPTIONS}"
        self._run("pg_ctl", "-D", str(self.base / "data"), "-l", str(self.base / "server.log"),
                  "-o", options, "-w", "-t", "60", "start")

    def pause(self) -> None:
        """Stop the server (dropping its connections), keeping its data for ``resume``."""
        # Not an immediate stop: with synchronous_commit off it would lose the last commits.
        self._run("pg_ctl", "-D", str(self.base / "data"), "-m", "fast", "-w", "stop")

    def resume(self) -> None:
        """Start a paused server again on its port."""
        port = self.url.rpartition(":")[2].partition("/")[0]
        self._pg_ctl_start(int(port))

    def stop(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self._run("pg_ctl", "-D", str(self.base / "data"), "-m", "fast", "-w", "stop")
        shutil.rmtree(self.base, ignore_errors=True)


def start_temporary(bindir: Path) -> ThrowawayServer:
    # Not pytest's tmp_path: its parents are private to this user, and the server may not be.
    return ThrowawayServer.start(Path(tempfile.mkdtemp(prefix="img2img-pg-")), bindir)


@contextlib.contextmanager
def some_server() -> Iterator[str | None]:
    """``$IMG2IMG_TEST_POSTGRES_URL``, or a throwaway server from the installed binaries
    (stopped afterwards); None when there is neither."""
    url = os.environ.get(URL_ENV)
    if url:
        yield url
        return
    bindir = find_bindir()
    if bindir is None:
        yield None
        return
    server = start_temporary(bindir)
    try:
        yield server.url
    finally:
        server.stop()


def with_database(url: str, name: str) -> str:
    """``url`` pointing at database ``name`` instead."""
    head, _, _ = url.rpartition("/")
    return f"{head}/{name}"


@contextlib.asynccontextmanager
async def fresh_database(server_url: str) -> AsyncIterator[str]:
    """A new empty database on the server for one test, dropped afterwards; yields its URL."""
    name = f"test_{uuid.uuid4().hex[:16]}"
    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield with_database(server_url, name)
        finally:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in ("start", "stop"):
        print("usage: python -m tests.postgres_server start|stop DIR", file=sys.stderr)
        return 2
    action, base = argv[0], Path(argv[1])
    bindir = find_bindir()
    if bindir is None:
        print(f"no PostgreSQL binaries found: {HOW_TO_RUN}", file=sys.stderr)
        return 1
    if action == "start":
        print(ThrowawayServer.start(base, bindir).url)
    else:
        ThrowawayServer(base, bindir).stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
