"""The core's long-lived parts wired together (database, HTTP client, Grok client, quotas, engine),
and the operator commands that need them: `grokbot check` (its core part; bot/checks.py has the
lines) and `grokbot usage`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TextIO

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from bot import store
from bot.admin import XaiWatch
from bot.checks import CheckLine, PlatformCheck, write_lines, xai_lines
from bot.db import Sessions, create_engine, database_report, session_factory, upgrade
from bot.digests import Digests
from bot.engine import Engine, utc_now
from bot.grok import GrokClient, Observer, http_client
from bot.inflight import InFlight, close_orphans
from bot.jobs import (
    HEARTBEAT_WINDOW,
    Deferrals,
    DeferredRequests,
    Jobs,
    Notices,
    RateLease,
    heartbeat_check,
    heartbeats,
)
from bot.platform import Platform
from bot.quotas import Quotas
from bot.settings import Settings
from bot.web import WebServer, database_check

log = logging.getLogger(__name__)


def grok_client(
    settings: Settings, http: httpx.AsyncClient, *, observer: Observer | None = None
) -> GrokClient:
    assert settings.xai_api_key is not None
    return GrokClient(
        http,
        api_key=settings.xai_api_key.get_secret_value(),
        base_url=settings.xai_base_url,
        observer=observer,
    )


# A deferred result may wait up to 24 h: only reservations older than that are abandoned.
STALE_RESERVATION = timedelta(hours=25)
LIVE_HEARTBEAT = HEARTBEAT_WINDOW  # the claimers beat every 30 s while they run


@dataclass
class Services:
    """Everything the core runs on, for one process. Adapters register in `platforms`."""

    settings: Settings
    db: AsyncEngine
    sessions: Sessions
    http: httpx.AsyncClient
    grok: GrokClient
    quotas: Quotas
    engine: Engine
    jobs: Jobs
    instance_id: str
    platforms: dict[str, Platform] = field(default_factory=dict)
    watch: XaiWatch | None = None  # counts xAI's refusals and alerts admins (bot.admin)
    rates: RateLease | None = None  # this instance's share of the platforms' rate limits

    @classmethod
    async def start(
        cls, settings: Settings, *, migrate: bool, http: httpx.AsyncClient | None = None
    ) -> Services:
        if migrate:
            logging.getLogger("alembic").setLevel(logging.WARNING)
            await asyncio.to_thread(upgrade, settings.database_url)
        db = create_engine(settings.database_url)
        sessions = session_factory(db)
        http = http or http_client()
        platforms: dict[str, Platform] = {}
        watch = XaiWatch(sessions, settings, platforms=platforms, clock=utc_now)
        grok = grok_client(settings, http, observer=watch)
        if not await grok.refresh_prices():
            log.warning("xAI model prices unreachable; using the built-in price table")
        quotas = Quotas(sessions, settings, clock=utc_now)
        instance_id = f"{socket.gethostname()[:40]}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        deferrals = Deferrals(
            DeferredRequests(sessions, clock=utc_now, instance_id=instance_id),
            grok=grok,
            quotas=quotas,
            platforms=platforms,
            clock=utc_now,
        )
        digests = Digests(
            sessions=sessions,
            grok=grok,
            quotas=quotas,
            platforms=platforms,
            clock=utc_now,
            instance_id=instance_id,
            timezone=settings.grokbot_timezone,
            model=settings.grokbot_model,
            min_interval=timedelta(seconds=settings.grokbot_digest_min_interval_s),
        )
        inflight = InFlight(sessions, instance=instance_id, clock=utc_now)
        engine = Engine(
            settings,
            grok=grok,
            sessions=sessions,
            quotas=quotas,
            deferrals=deferrals,
            digests=digests,
            inflight=inflight,
        )

        async def maintenance() -> None:
            await grok.refresh_prices()
            await quotas.sweep_stale(STALE_RESERVATION)
            await store.prune_events(sessions, older_than=utc_now() - store.EVENT_RETENTION)

        notices = Notices(db, instance_id=instance_id)
        # SQLite serves one process (`grokbot run` refuses a second): its budgets are its own, and
        # only a crashed predecessor can have left answers open; an idle process then stays idle.
        one = settings.is_sqlite
        rates = (
            None
            if one
            else RateLease(sessions, engine.shares, instance_id=instance_id, clock=utc_now, notices=notices)
        )
        jobs = Jobs(
            sessions=sessions,
            deferrals=deferrals,
            digests=digests,
            clock=utc_now,
            instance_id=instance_id,
            maintenance=maintenance,
            notices=notices,
            orphans=lambda: orphans(sessions, platforms, instance_id),
            orphans_once=one,
        )
        return cls(
            settings, db, sessions, http, grok, quotas, engine, jobs, instance_id, platforms, watch, rates
        )

    async def drain(
        self, web: WebServer, drains: Sequence[Callable[[], Awaitable[None]]], *, grace: float
    ) -> None:
        """A graceful stop (SIGTERM, SIGINT; issue 18): not ready at once (/readyz 503), no new work
        taken (Slack's deliveries answered so that Slack sends them again, the Discord gateway
        closed), no more scheduled work claimed; the answers in flight get `grace` seconds to
        finish, and those still running then are closed with a note (bot.inflight)."""
        log.info("stopping: answers in flight have %g s to finish", grace)
        web.stop_serving_traffic()
        jobs = asyncio.create_task(self.jobs.stop(grace=grace))
        for take_no_more in drains:
            await take_no_more()
        cut = await self.engine.answers.inflight.settle(grace)
        await jobs
        log.info("stopped: %d answer(s) cut short and closed with a note", cut)

    async def other_live_instance(self) -> str | None:
        """Another running process whose scheduler beat recently on this database, if any.

        A beat from a process of this host that no longer exists (a crash just before a restart)
        does not count."""
        others = sorted(await live_instances(self.sessions) - {self.instance_id[:64]})
        return others[0] if others else None

    def web_server(self) -> WebServer:
        """The HTTP server with database and scheduler readiness checks."""
        checks = {
            "database": database_check(self.db),
            "scheduler": heartbeat_check(self.sessions, instance=self.instance_id, clock=utc_now),
        }
        return WebServer(port=self.settings.port, checks=checks)

    async def close(self) -> None:
        if self.rates is not None:
            await self.rates.stop()
        await self.jobs.stop()
        if self.watch is not None:
            await self.watch.drain()
        await self.http.aclose()
        await self.db.dispose()


async def live_instances(sessions: Sessions) -> set[str]:
    """The instances with a recent heartbeat, less this host's processes that are gone (the
    liveness the SQLite start check and the closing of orphaned answers use)."""
    fresh = utc_now() - LIVE_HEARTBEAT
    beating = {instance for instance, _component, beat_at in await heartbeats(sessions) if beat_at >= fresh}
    return {instance for instance in beating if _alive(instance)}


async def orphans(sessions: Sessions, platforms: dict[str, Platform], me: str) -> int:
    """Close the answers that instances no longer alive left in progress (run after heartbeats:
    at start, and on PostgreSQL by the instances that outlive a dead one)."""
    return await close_orphans(sessions, platforms, live=await live_instances(sessions) | {me[:64]})


def _alive(instance: str) -> bool:
    """False only for an instance id of this host whose process is gone. Another instance id with
    this process's own pid is a previous run (a container restarted: pid 1 again), so it is gone."""
    parts = instance.rsplit("-", 2)
    if len(parts) != 3 or parts[0] != socket.gethostname()[:40] or not parts[1].isdigit():
        return True
    if int(parts[1]) == os.getpid():
        return False
    try:
        os.kill(int(parts[1]), 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


async def check(settings: Settings, *, out: TextIO, platforms: Sequence[PlatformCheck] = ()) -> bool:
    """Try the database, xAI (the key, the models and their prices, the Responses API) and each
    platform (the adapters' checks, passed in by the composition root); print a line for each, with
    the fix under each failure. True when nothing failed."""
    database = CheckLine(*await database_report(settings.database_url))
    ok = write_lines([CheckLine(True, "configuration is valid"), database], out)
    async with http_client() as http:
        ok = write_lines(await xai_lines(settings, http), out) and ok
    for platform_check in platforms:
        ok = write_lines(await platform_check(settings), out) and ok
    return ok


async def usage_report(settings: Settings, *, since: str | None, user: str | None, fmt: str) -> str:
    now = datetime.now(settings.zone)
    if since:
        try:
            start = datetime.strptime(since, "%Y-%m-%d").replace(tzinfo=settings.zone)
        except ValueError:
            raise ValueError(f"--since takes a date as YYYY-MM-DD, not {since!r}") from None
    else:
        start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    from bot.reports import render, usage_rows

    db = create_engine(settings.database_url)
    try:
        rows = await usage_rows(session_factory(db), since=start.astimezone(UTC), user=user)
    finally:
        await db.dispose()
    return render(rows, fmt)
