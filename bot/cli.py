"""The ``img2img-bot`` command: run, transform, credits, doctor."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import importlib
import json
import logging
import signal
import sys
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.app import App, running_app
from bot.config import CONFIG_ENV, Config, load_config
from bot.credits import describe_entry
from bot.diagnose import Check, check_provider
from bot.errors import BotError, DeliveryRefused, StorageUnavailable
from bot.events import Detached, Done, Failed, Progress, Queued
from bot.jobs import GenerationRequest, JobHandle
from bot.logs import setup_logging
from bot.models import ChatRef, UserRef
from bot.parser import parse_caption
from bot.presenter import failure_text
from bot.redact import redact
from storage.base import JobRecord

if TYPE_CHECKING:
    from bot.web import WebServer

log = logging.getLogger("img2img-bot")
ADAPTERS = {"telegram": "adapters.telegram:run_telegram", "discord": "adapters.discord:run_discord"}
PLATFORM_CHECKS = {"telegram": "adapters.telegram.doctor:check",
                   "discord": "adapters.discord.doctor:check"}


def _load(target: str) -> Any:
    module_name, _, name = target.partition(":")
    return getattr(importlib.import_module(module_name), name)


def _adapter(name: str) -> Callable[[App, asyncio.Event], Coroutine[None, None, None]]:
    runner: Callable[[App, asyncio.Event], Coroutine[None, None, None]] = _load(ADAPTERS[name])
    return runner


def _platforms(config: Config) -> list[str]:
    return [name for name in ADAPTERS
            if (section := getattr(config, name)) is not None and section.token is not None]


def _web_server(app: App) -> WebServer | None:
    """The HTTP server: on with [http] enabled, and in webhook mode (same server) on every
    process that receives updates (a worker, sharing the gateways' config, does not)."""
    from bot.web import WebServer  # aiohttp: imported only by the commands that serve HTTP

    config = app.config
    hook = config.telegram.webhook if config.telegram and config.telegram.mode == "webhook" \
        and app.role != "worker" else None
    if config.http.enabled:
        server = WebServer(app, config.http.host, config.http.port)
    elif hook is not None:
        server = WebServer(app, hook.host, hook.port)
    else:
        return None
    if hook is not None:
        app.webhook = server.late_post(hook.path)
    return server


async def check_providers_at_start(app: App) -> None:
    """One health check per provider; a provider that is down is one warning, not a stop."""
    checks = await asyncio.gather(*(check_provider(p) for p in app.providers.values()))
    for check in checks:
        if check.ok:
            log.info("%s", check.line())
        else:
            log.warning("%s", check.line())


async def cmd_run(config: Config, args: argparse.Namespace) -> int:
    platforms = _platforms(config)
    if not platforms:
        print("No platform is configured: set TELEGRAM_BOT_TOKEN or DISCORD_BOT_TOKEN "
              "(or add a [telegram] or [discord] section with a token).", file=sys.stderr)
        return 2
    stop = asyncio.Event()  # tells the adapters to stop
    signalled = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, signalled.set)
    async with running_app(config, role=args.role) as app:
        log.info("%s", config.backend_reason)
        log.info("starting %s with providers %s", ", ".join(platforms), ", ".join(app.providers))
        for name in platforms:
            app.health.expect(name)
        server = _web_server(app)
        if server is not None:
            await server.start()
        checking = asyncio.create_task(check_providers_at_start(app), name="provider-checks")
        tasks = [asyncio.create_task(_adapter(name)(app, stop), name=name) for name in platforms]
        freeze_startup_objects()
        waiting = asyncio.create_task(signalled.wait(), name="signals")
        try:
            await asyncio.wait([*tasks, waiting], return_when=asyncio.FIRST_COMPLETED)
            # Jobs running here go back to the queue while their couriers can still say so.
            await app.service.stop()
            stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)
            finished = [task for task in tasks if task.done()]
        finally:
            waiting.cancel()
            checking.cancel()
            await asyncio.gather(checking, return_exceptions=True)
            if server is not None:
                await server.stop()
        for task in finished:
            error = None if task.cancelled() else task.exception()
            if error is not None:
                raise error
    return 0


def freeze_startup_objects() -> None:
    """Leave what imports and startup made out of the cycle collector's scans (``gc.freeze``).

    They are most of the heap (about 260,000 objects with both platforms' libraries), live as
    long as the process and are never garbage, yet every full collection walks them all: a
    pause of about 200 ms in which no update, job or delivery moves. Frozen, a full collection
    walks only what the bot made since. No collection first: at this point one finds nothing
    to free (measured) and would itself stop the start for about 100 ms.
    """
    gc.freeze()


class FileCourier:
    """``transform``'s delivery: the result is written to the output file(s) before the
    charge commits, so a failed write is refunded."""

    def __init__(self, output: Path) -> None:
        self.output = output
        self.written: list[Path] = []

    async def deliver(self, job: JobRecord, done: Done) -> str:
        paths = [self.output if i == 0 else self.output.with_stem(f"{self.output.stem}-{i + 1}")
                 for i in range(len(done.images))]
        try:
            for path, image in zip(paths, done.images, strict=True):
                await asyncio.to_thread(path.write_bytes, image.data)
        except OSError as exc:
            raise DeliveryRefused(f"cannot write {exc.filename}: {exc.strerror}",
                                  permanent=True) from exc
        self.written = paths
        return str(paths[0])

    async def notify(self, job: JobRecord, text: str) -> None:
        print(text, file=sys.stderr)

    def resume(self, handle: JobHandle, job: JobRecord) -> None:
        return None


async def cmd_transform(config: Config, args: argparse.Namespace) -> int:
    parsed = parse_caption(" ".join([args.prompt, *args.options]))
    user = UserRef.parse(args.user)
    image = await asyncio.to_thread(Path(args.input).read_bytes)
    async with running_app(config) as app:
        courier = FileCourier(Path(args.output))
        app.service.register_courier(user.platform, courier, shared=False)
        request = GenerationRequest(user=user, chat=ChatRef(user.platform, user.id, private=True),
                                    image=image, prompt=parsed.prompt, overrides=parsed.overrides)
        handle = await app.service.submit(request)
        for notice in handle.notices:
            print(f"note: {notice}", file=sys.stderr)
        async for event in handle.events():
            if isinstance(event, Queued):
                print(f"queued (position {event.position})", file=sys.stderr)
            elif isinstance(event, Progress) and event.fraction is not None:
                print(f"generating {event.fraction:.0%}", file=sys.stderr)
            elif isinstance(event, Failed):
                print(f"error: {failure_text(event)}", file=sys.stderr)
                return 1
            elif isinstance(event, Detached):
                print("error: the job was stopped before it finished", file=sys.stderr)
                return 1
            elif isinstance(event, Done):
                for path in courier.written:
                    print(path)
                print(f"seed {event.seed}, cost {event.cost}, balance {event.balance}",
                      file=sys.stderr)
    return 0


async def cmd_credits(config: Config, args: argparse.Namespace) -> int:
    user = UserRef.parse(args.user)
    async with running_app(config, start_workers=False) as app:
        if args.action == "grant":
            balance = await app.service.credits.grant(user, args.amount)
            print(f"{user.key}: balance {balance}")
            return 0
        # Looking must not create the user (and their welcome grant): read storage directly.
        known = await app.storage.balance(user.key)
        if known is None:
            print(f"{user.key}: no such user", file=sys.stderr)
            return 1
        history = await app.service.credits.history(user, 20)
        if args.json:
            print(json.dumps({"user": user.key, "balance": known, "ledger": [
                {"amount": e.amount, "kind": e.kind, "job": e.job_id, "at": e.created_at}
                for e in history]}))
        else:
            print(f"{user.key}: balance {known}")
            for entry in history:
                print("  " + describe_entry(entry))
    return 0


async def doctor_checks(config: Config) -> list[Check]:
    """Config, storage, each configured platform and each provider, as the bot would use them."""
    checks = [Check("config", True, f"ok ({len(config.providers)} provider(s); "
                                    f"{config.backend_reason})")]
    for name in ADAPTERS:
        section = getattr(config, name)
        if section is not None and section.token is None:
            checks.append(Check(name, False, "no token", cause="the section has no token",
                                remedy=f"set {name.upper()}_BOT_TOKEN"))
    async with running_app(config, start_workers=False) as app:
        try:
            stats = await app.storage.stats()
        except Exception as exc:  # any failure here means the database is unusable
            checks.append(Check("storage", False, "error", url=config.storage.display_url,
                                cause=redact(f"{type(exc).__name__}: {exc}")))
        else:
            checks.append(Check("storage", True, f"ok ({config.storage.display_url}, "
                                                 f"{stats['users']} users)",
                                url=config.storage.display_url))
        checks.extend(await asyncio.gather(*(_load(PLATFORM_CHECKS[name])(getattr(config, name))
                                             for name in _platforms(config))))
        checks.extend(await asyncio.gather(*(check_provider(p) for p in app.providers.values())))
    return checks


async def cmd_doctor(config: Config, args: argparse.Namespace) -> int:
    checks = await doctor_checks(config)
    ok = all(check.ok for check in checks)
    if args.json:
        print(json.dumps({"ok": ok, "checks": [check.as_dict() for check in checks]}))
    else:
        for check in checks:
            print(check.line())
    return 0 if ok else 1


def _config_option(parser: argparse.ArgumentParser, *, top: bool = False) -> None:
    """``--config`` before or after the subcommand: people type ``img2img-bot run --config c``."""
    # SUPPRESS on the subcommands, so that an absent one does not erase the top-level value.
    parser.add_argument("--config", default=None if top else argparse.SUPPRESS,
                        help=f"TOML config file (optional; default: ${CONFIG_ENV})")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="img2img-bot", description=__doc__)
    _config_option(parser, top=True)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="start every configured platform")
    _config_option(run)
    run.add_argument("--role", choices=("all", "gateway", "worker"), default="all",
                     help="all (default): one process does everything; gateway: receive "
                     "platform events and queue jobs; worker: run queued jobs and deliver them")
    transform = sub.add_parser("transform", help="run one image through the core, locally")
    transform.add_argument("input")
    transform.add_argument("prompt", help="the prompt; options may follow, e.g. --strength 0.5")
    transform.add_argument("-o", "--output", required=True)
    transform.add_argument("--user", default="local:cli", help="who pays (default local:cli)")
    _config_option(transform)
    credits = sub.add_parser("credits", help="show or grant credits")
    credits_sub = credits.add_subparsers(dest="action", required=True)
    show = credits_sub.add_parser("show")
    show.add_argument("user", help="like telegram:123")
    show.add_argument("--json", action="store_true")
    _config_option(show)
    grant = credits_sub.add_parser("grant")
    grant.add_argument("user")
    grant.add_argument("amount", type=int)
    _config_option(grant)
    doctor = sub.add_parser("doctor", help="check config, storage, platforms and every provider")
    doctor.add_argument("--json", action="store_true", help="the same report as JSON")
    _config_option(doctor)
    return parser


COMMANDS = {"run": cmd_run, "transform": cmd_transform, "credits": cmd_credits,
            "doctor": cmd_doctor}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and args.command != "transform":
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.options = extra
    try:
        config = load_config(args.config)
        setup_logging(config.logging)
        return asyncio.run(COMMANDS[args.command](config, args))
    except StorageUnavailable as exc:
        print(f"error: {exc.detail}", file=sys.stderr)
        return 2
    except BotError as exc:
        print(f"error: {exc.user_message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
