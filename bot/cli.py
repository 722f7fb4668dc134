"""The ``img2img-bot`` command: run, transform, credits, doctor."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import json
import logging
import signal
import sys
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path

from bot.app import App, running_app
from bot.config import CONFIG_ENV, Config, load_config
from bot.credits import describe_entry
from bot.errors import BotError, StorageUnavailable
from bot.events import Done, Failed, Progress, Queued
from bot.jobs import GenerationRequest
from bot.models import ChatRef, UserRef
from bot.parser import parse_caption
from bot.presenter import failure_text
from bot.redact import install_log_redaction, redact

log = logging.getLogger("img2img-bot")
ADAPTERS = {"telegram": "adapters.telegram:run_telegram", "discord": "adapters.discord:run_discord"}


def _setup_logging(level: str) -> None:
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: "
                        "%(message)s")
    install_log_redaction()


def _adapter(name: str) -> Callable[[App, asyncio.Event], Coroutine[None, None, None]]:
    module_name, _, func = ADAPTERS[name].partition(":")
    runner: Callable[[App, asyncio.Event], Coroutine[None, None, None]] = getattr(
        importlib.import_module(module_name), func)
    return runner


async def cmd_run(config: Config, args: argparse.Namespace) -> int:
    platforms = [name for name in ADAPTERS
                 if (section := getattr(config, name)) is not None and section.token is not None]
    if not platforms:
        print("No platform is configured: add a [telegram] or [discord] section with a token "
              "(or set TELEGRAM_BOT_TOKEN / DISCORD_BOT_TOKEN).", file=sys.stderr)
        return 2
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    async with running_app(config) as app:
        log.info("starting %s with providers %s", ", ".join(platforms), ", ".join(app.providers))
        tasks = [asyncio.create_task(_adapter(name)(app, stop), name=name) for name in platforms]
        finished, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        for task in finished:
            error = None if task.cancelled() else task.exception()
            if error is not None:
                raise error
    return 0


async def cmd_transform(config: Config, args: argparse.Namespace) -> int:
    parsed = parse_caption(" ".join([args.prompt, *args.options]))
    user = UserRef.parse(args.user)
    image = await asyncio.to_thread(Path(args.input).read_bytes)
    async with running_app(config) as app:
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
            elif isinstance(event, Done):
                out = Path(args.output)
                for index, result in enumerate(event.images):
                    target = out if index == 0 else out.with_stem(f"{out.stem}-{index + 1}")
                    target.write_bytes(result.data)
                    print(target)
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


async def cmd_doctor(config: Config, _: argparse.Namespace) -> int:
    problems = 0
    print(f"config: ok ({len(config.providers)} provider(s))")
    for name in ADAPTERS:
        section = getattr(config, name)
        state = ("configured" if section and section.token else
                 "section present but no token" if section else "not configured")
        print(f"{name}: {state}")
    async with running_app(config, start_workers=False) as app:
        stats = await app.storage.stats()
        print(f"storage: ok ({config.storage.display_url}, {stats['users']} users)")
        for name, provider in app.providers.items():
            try:
                status = await asyncio.wait_for(provider.health(), 30)
            except (BotError, TimeoutError) as exc:
                problems += 1
                message = exc.user_message if isinstance(exc, BotError) else "no answer in 30 s"
                print(f"provider {name} ({provider.settings.type}): FAILED - {message}")
            else:
                print(f"provider {name} ({provider.settings.type}): {redact(status)}")
    return 1 if problems else 0


def _config_option(parser: argparse.ArgumentParser, *, top: bool = False) -> None:
    """``--config`` before or after the subcommand: people type ``img2img-bot run --config c``."""
    # SUPPRESS on the subcommands, so that an absent one does not erase the top-level value.
    parser.add_argument("--config", default=None if top else argparse.SUPPRESS,
                        help=f"TOML config file (optional; default: ${CONFIG_ENV})")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="img2img-bot", description=__doc__)
    _config_option(parser, top=True)
    sub = parser.add_subparsers(dest="command", required=True)
    _config_option(sub.add_parser("run", help="start every configured platform"))
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
        _setup_logging(config.log_level)
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
