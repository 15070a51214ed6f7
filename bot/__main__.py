"""Command line and composition root: builds Settings, the engine, the adapters and the jobs.

This is the one module of `bot` allowed to import adapters (it wires them in).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from bot import logs
from bot.aio import loop_name
from bot.aio import run as run_loop
from bot.db import DatabaseUnusable, require_schema
from bot.inflight import CLOSE_WITHIN_S
from bot.settings import Settings, SettingsError, load_settings

if TYPE_CHECKING:
    from bot.services import Services
    from bot.web import WebServer

log = logging.getLogger("grokbot")

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_CONFIG = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="grokbot",
        description="xAI's Grok in Discord and Slack. Configuration comes from the environment "
        "and a .env file (see README).",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log at DEBUG level")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    commands.add_parser(
        "run",
        help="start every platform whose credentials are set, the scheduler and the HTTP server",
        description="Start Discord (when DISCORD_TOKEN is set), Slack (when SLACK_BOT_TOKEN is "
        "set), the scheduler and the HTTP server on $PORT. SQLite databases are migrated first.",
    )
    commands.add_parser(
        "console",
        help="chat with the bot in this terminal, no Discord or Slack needed",
        description="A terminal chat with the same engine and commands (/imagine, /usage, ...). "
        "Plain text asks; generated images are saved to files.",
    )
    commands.add_parser(
        "migrate",
        help="apply database migrations (alembic upgrade head) on DATABASE_URL",
        description="Run `alembic upgrade head` on DATABASE_URL.",
    )
    commands.add_parser(
        "check",
        help="validate the configuration and try the database, xAI, Slack and Discord",
        description="Validate the configuration; try the database, the xAI key, models, prices and "
        "Responses API, and the Slack and Discord tokens that are set (Slack's signing secret or "
        "app-level token, Discord's Message Content intent); print what works and, for what does "
        "not, the fix; exit non-zero on any failure.",
    )
    usage = commands.add_parser(
        "usage",
        help="usage report from the ledger",
        description="Spend, tokens and images per user from the usage ledger.",
    )
    usage.add_argument("--since", help="start date, YYYY-MM-DD (default: first day of this month)")
    usage.add_argument("--user", help="only this user id (platform:user_id or user_id)")
    usage.add_argument("--format", choices=("table", "csv", "json"), default="table")
    admin = commands.add_parser(
        "admin-link",
        help="print a one-time sign-in link to the admin pages, or end every admin session",
        description="Print a sign-in link (good once, for 10 minutes) for an admin named in "
        "GROKBOT_ADMINS, or end every admin session with --revoke-all.",
    )
    admin.add_argument("--user", help="the admin, as platform:user_id (one of GROKBOT_ADMINS)")
    admin.add_argument("--revoke-all", action="store_true", help="end every session and unused link")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(exc, file=sys.stderr)
        return EXIT_CONFIG
    logs.configure(settings, verbose=args.verbose)
    handler: Callable[[Settings, argparse.Namespace], int] = COMMANDS[args.command]
    try:
        return handler(settings, args)
    except DatabaseUnusable as exc:
        print(
            f"grokbot {args.command}: {exc} (DATABASE_URL={_redact_url(settings.database_url)})",
            file=sys.stderr,
        )
        return EXIT_CONFIG
    except KeyboardInterrupt:
        return EXIT_OK


def cmd_migrate(settings: Settings, _args: argparse.Namespace) -> int:
    from bot.db import upgrade

    upgrade(settings.database_url)
    print(f"Database is up to date ({_redact_url(settings.database_url)}).")
    return EXIT_OK


def cmd_run(settings: Settings, _args: argparse.Namespace) -> int:
    if settings.discord_token is None and settings.slack_bot_token is None:
        print(
            "No chat platform is configured: set DISCORD_TOKEN and/or SLACK_BOT_TOKEN "
            "(see README).\nTo try grokbot without Discord or Slack, run `grokbot console`.",
            file=sys.stderr,
        )
        return EXIT_CONFIG
    if _missing_key(settings):
        return EXIT_CONFIG
    try:
        return run_loop(serve(settings))
    except StartupError as exc:
        print(f"grokbot cannot start: {exc}", file=sys.stderr)
        return EXIT_CONFIG


class StartupError(Exception):
    """A platform refused to start (bad token, missing intent, missing secret); says what to fix."""


@dataclass
class _Running:
    """What `grokbot run` started: how to stop each part (given the time left), how to drain
    them for a stop, and what ends the service when it ends (the Discord gateway)."""

    stoppers: list[Callable[[float], Awaitable[None]]] = field(default_factory=list)
    drains: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    waiters: list[Awaitable[None]] = field(default_factory=list)


async def serve(settings: Settings) -> int:
    """The service: platforms with credentials, the HTTP server and the scheduler, until SIGTERM."""
    services = await open_services(settings)
    if settings.is_sqlite and (other := await services.other_live_instance()):
        await services.close()
        raise StartupError(
            f"another grokbot process ({other}) is running on this SQLite database. SQLite suits "
            "one process; to run several, use PostgreSQL (DATABASE_URL=postgresql+asyncpg://…)."
        )
    if services.rates is not None:  # this instance's share of the platforms' rate limits, at once
        await services.rates.start()
    web = services.web_server()
    from bot.admin import mount

    mount(
        web,
        sessions=services.sessions,
        settings=settings,
        quotas=services.quotas,
        clock=services.engine.clock,
        prices=services.grok.prices,
    )
    running = _Running()
    deadline: float | None = None  # when a stop must be over (monotonic), once one began
    try:
        if settings.slack_bot_token is not None:
            await _start_slack(settings, services, web, running)
        if settings.discord_token is not None:
            await _start_discord(settings, services, web, running)
        await web.start()
        running.stoppers.append(lambda _within: web.stop())
        services.jobs.start()
        log.info(
            "grokbot is running on port %d (instance %s, %s event loop)",
            web.port,
            services.instance_id,
            loop_name(),
        )
        await _until_stopped(running.waiters)
        deadline = asyncio.get_running_loop().time() + settings.grokbot_shutdown_grace_s + CLOSE_WITHIN_S
        await services.drain(web, running.drains, grace=settings.grokbot_shutdown_grace_s)
        return EXIT_OK
    finally:
        for stopper in reversed(running.stoppers):
            within = 10.0 if deadline is None else max(0.5, deadline - asyncio.get_running_loop().time())
            await stopper(within)
        await services.close()


async def _start_slack(settings: Settings, services: Services, web: WebServer, running: _Running) -> None:
    from adapters.slack import SlackAdapter
    from bot.errors import PlatformError

    try:
        slack = SlackAdapter(settings, services.engine, web=web)
    except ValueError as exc:
        raise StartupError(str(exc)) from None
    services.platforms[slack.platform.name] = slack.platform
    services.engine.shares.subscribe(slack.api.pacer.set_share)
    try:
        await slack.start()
    except PlatformError as exc:
        raise StartupError(str(exc)) from None
    running.stoppers.append(_within_grace(slack.stop))
    running.drains.append(slack.drain)
    log.info("Slack connected (%s mode)", "Socket" if slack.socket_mode else "HTTP")


async def _start_discord(settings: Settings, services: Services, web: WebServer, running: _Running) -> None:
    from adapters.discord import DiscordAdapter
    from bot.errors import PlatformError

    discord_adapter = DiscordAdapter(settings, services.engine)
    services.engine.shares.subscribe(discord_adapter.pacer.set_share)
    services.platforms[discord_adapter.platform.name] = discord_adapter.platform

    async def discord_ready() -> bool:
        return discord_adapter.ready()

    web.add_check("discord", discord_ready)
    try:
        await discord_adapter.start()
    except PlatformError as exc:
        raise StartupError(str(exc)) from None
    running.stoppers.append(_within_grace(discord_adapter.stop))
    running.drains.append(discord_adapter.drain)
    running.waiters.append(discord_adapter.wait())


async def _until_stopped(waiters: list[Awaitable[None]]) -> None:
    """Until SIGTERM or SIGINT; a platform connection that ends with an error ends the service."""
    import signal

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    watched = [asyncio.ensure_future(w) for w in waiters]
    stopped = asyncio.ensure_future(stop.wait())
    done, _ = await asyncio.wait([stopped, *watched], return_when=asyncio.FIRST_COMPLETED)
    for task in done:
        if task is not stopped and task.exception() is not None:
            raise StartupError(str(task.exception()))


def _within_grace(stop: Callable[..., Awaitable[None]]) -> Callable[[float], Awaitable[None]]:
    """An adapter's stop(grace=...) given the time left to the stop's deadline."""
    return lambda within: stop(grace=within)


async def open_services(settings: Settings) -> Services:
    """The core's services on a usable database: SQLite is migrated here, PostgreSQL must be already
    (its migrations run once per release, `grokbot migrate`)."""
    from bot.services import Services

    if not settings.is_sqlite:
        await require_schema(settings.database_url)
    return await Services.start(settings, migrate=settings.is_sqlite)


def cmd_console(settings: Settings, args: argparse.Namespace) -> int:
    if _missing_key(settings):
        return EXIT_CONFIG
    from pathlib import Path

    from adapters.console import (
        ConsolePlatform,
        LineReader,
        Prompter,
        Screen,
        ScreenLog,
        Terminal,
        chat,
        history_path,
        stream_reader,
    )

    screen = Screen(sys.stdout)
    interactive = screen.tty and sys.stdin.isatty()
    platform = ConsolePlatform(screen, image_dir=Path("grokbot-images"), markdown=interactive)
    logs.redirect(ScreenLog(screen), verbose=args.verbose)  # the terminal is the conversation

    async def session(read: LineReader) -> None:
        services = await open_services(settings)
        services.platforms[platform.name] = platform
        services.jobs.start()  # deferred answers (`/ask defer:true ...`) arrive while you chat
        try:
            await until_stopped(chat(services.engine, platform, read), services, settings)
        finally:
            await services.close()

    if interactive:
        Terminal(Prompter(screen, history=history_path()), interrupt=platform.interrupt).run(session)
    else:
        run_loop(session(stream_reader(platform, sys.stdin)))
    return EXIT_OK


async def until_stopped(work: Awaitable[None], services: Services, settings: Settings) -> None:
    """Run `work` (the console's chat) until it ends or SIGTERM comes; then the answer in flight
    gets the grace period to finish, and is closed with a note if it does not. Where signals
    cannot be handled here (the terminal runs this loop off the main thread), just `work`."""
    import signal

    chatting = asyncio.ensure_future(work)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    try:
        loop.add_signal_handler(signal.SIGTERM, stopping.set)
    except (RuntimeError, ValueError):  # not the main thread
        await chatting
        return
    stopped = asyncio.ensure_future(stopping.wait())
    try:
        await asyncio.wait([chatting, stopped], return_when=asyncio.FIRST_COMPLETED)
        if chatting.done():
            return chatting.result()
        await services.engine.answers.inflight.settle(settings.grokbot_shutdown_grace_s)
        chatting.cancel()
        await asyncio.gather(chatting, return_exceptions=True)
    finally:
        stopped.cancel()
        loop.remove_signal_handler(signal.SIGTERM)


def cmd_check(settings: Settings, _args: argparse.Namespace) -> int:
    """The core's checks, then each platform's, from its adapter."""
    from adapters.discord import check_discord
    from adapters.slack import check_slack
    from bot.services import check

    checked = run_loop(check(settings, out=sys.stdout, platforms=(check_slack, check_discord)))
    return EXIT_OK if checked else EXIT_FAILED


def cmd_usage(settings: Settings, args: argparse.Namespace) -> int:
    from bot.services import usage_report

    async def report() -> str:
        await require_schema(settings.database_url)  # never on a database without the ledger
        return await usage_report(settings, since=args.since, user=args.user, fmt=args.format)

    try:
        text = run_loop(report())
    except ValueError as exc:
        print(f"grokbot usage: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    print(text)
    return EXIT_OK


def cmd_admin_link(settings: Settings, args: argparse.Namespace) -> int:
    from bot.admin import admin_link_command

    logging.getLogger("alembic").setLevel(logging.WARNING)
    return run_loop(admin_link_command(settings, user=args.user, revoke_all=args.revoke_all, out=sys.stdout))


def _missing_key(settings: Settings) -> bool:
    if settings.xai_api_key is None or not settings.xai_api_key.get_secret_value():
        print(
            "XAI_API_KEY is not set: create a key at https://console.x.ai and put it in the "
            "environment or a .env file.",
            file=sys.stderr,
        )
        return True
    return False


def _redact_url(url: str) -> str:
    """The URL without its password, for messages."""
    scheme, sep, rest = url.partition("://")
    if "@" not in rest:
        return url
    credentials, _, host = rest.rpartition("@")
    user = credentials.split(":", 1)[0]
    return f"{scheme}{sep}{user}:***@{host}" if ":" in credentials else f"{scheme}{sep}{rest}"


COMMANDS: dict[str, Callable[[Settings, argparse.Namespace], int]] = {
    "run": cmd_run,
    "console": cmd_console,
    "migrate": cmd_migrate,
    "check": cmd_check,
    "usage": cmd_usage,
    "admin-link": cmd_admin_link,
}

if __name__ == "__main__":
    sys.exit(main())
