"""The core's long-lived parts wired together (database, HTTP client, Grok client, quotas, engine),
and the operator commands that need them: `grokbot check` and `grokbot usage`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TextIO

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from bot import store
from bot.admin import XaiWatch
from bot.db import Sessions, create_engine, database_report, session_factory, upgrade
from bot.digests import Digests
from bot.engine import Engine, utc_now
from bot.errors import BotError
from bot.grok import GrokClient, ModelInfo, Observer
from bot.grok.net import AsyncioTransport
from bot.grok.pacing import CONCURRENCY as PACED_STREAMS
from bot.jobs import Deferrals, DeferredRequests, Jobs, heartbeat_check, heartbeats
from bot.platform import Platform
from bot.quotas import Quotas, format_usd
from bot.settings import Settings
from bot.web import WebServer, database_check

log = logging.getLogger(__name__)


def http_client() -> httpx.AsyncClient:
    """The one shared HTTP client for xAI: keep-alive, explicit timeouts (streams read per chunk),
    on the lean asyncio network layer (bot/grok/net.py). Room for every paced stream at once
    (Pacing's concurrency) plus the unpaced calls beside them."""
    limits = httpx.Limits(max_connections=PACED_STREAMS + 16, max_keepalive_connections=32)
    return httpx.AsyncClient(
        timeout=httpx.Timeout(connect=10.0, read=120.0, write=30.0, pool=30.0),
        transport=AsyncioTransport(limits=limits),
    )


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
LIVE_HEARTBEAT = timedelta(seconds=30)  # the scheduler beats every 2 s while it runs


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
        )
        engine = Engine(
            settings, grok=grok, sessions=sessions, quotas=quotas, deferrals=deferrals, digests=digests
        )

        async def maintenance() -> None:
            await grok.refresh_prices()
            await quotas.sweep_stale(STALE_RESERVATION)
            await store.prune_events(sessions, older_than=utc_now() - store.EVENT_RETENTION)

        jobs = Jobs(
            sessions=sessions,
            deferrals=deferrals,
            digests=digests,
            clock=utc_now,
            instance_id=instance_id,
            maintenance=maintenance,
        )
        return cls(settings, db, sessions, http, grok, quotas, engine, jobs, instance_id, platforms, watch)

    async def other_live_instance(self) -> str | None:
        """Another running process whose scheduler beat recently on this database, if any.

        A beat from a process of this host that no longer exists (a crash just before a restart)
        does not count."""
        fresh = utc_now() - LIVE_HEARTBEAT
        for instance, _component, beat_at in await heartbeats(self.sessions):
            if instance != self.instance_id[:64] and beat_at >= fresh and _alive(instance):
                return instance
        return None

    def web_server(self) -> WebServer:
        """The HTTP server with database and scheduler readiness checks."""
        checks = {
            "database": database_check(self.db),
            "scheduler": heartbeat_check(self.sessions, instance=self.instance_id, clock=utc_now),
        }
        return WebServer(port=self.settings.port, checks=checks)

    async def close(self) -> None:
        await self.jobs.stop()
        if self.watch is not None:
            await self.watch.drain()
        await self.http.aclose()
        await self.db.dispose()


def _alive(instance: str) -> bool:
    """False only for an instance id of this host whose process is gone."""
    parts = instance.rsplit("-", 2)
    if len(parts) != 3 or parts[0] != socket.gethostname()[:40] or not parts[1].isdigit():
        return True
    try:
        os.kill(int(parts[1]), 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _find(models: list[ModelInfo], name: str) -> ModelInfo | None:
    for model in models:
        if model.id == name or name in model.aliases:
            return model
    return None


async def check(settings: Settings, *, out: TextIO) -> bool:
    """Try the database, the xAI key and the configured models; print what works. True if all do."""
    ok = True

    def say(good: bool, line: str) -> None:
        nonlocal ok
        ok = ok and good
        out.write(f"{'✓' if good else '✗'} {line}\n")

    say(True, "configuration is valid")
    say(*await database_report(settings.database_url))
    if settings.xai_api_key is None:
        say(False, "XAI_API_KEY is not set")
        return ok
    async with http_client() as http:
        grok = grok_client(settings, http)
        try:
            key = await grok.api_key_info()
        except BotError as exc:
            say(False, f"xAI API key rejected: {exc}")
            return ok
        say(not (key.blocked or key.disabled), f"xAI API key {key.redacted_key} ({key.name})")
        try:
            chat_models = await grok.language_models()
            image_models = await grok.image_models()
        except BotError as exc:
            say(False, f"could not list models: {exc}")
            return ok
        for role, name, models in (
            ("chat", settings.grokbot_model, chat_models),
            ("reasoning", settings.grokbot_reasoning_model, chat_models),
            ("image", settings.grokbot_image_model, image_models),
        ):
            model = _find(models, name)
            if model is None:
                say(False, f"{role} model {name!r} is not available to this key")
            elif role == "image":
                say(True, f"{role} model {name}: {format_usd(model.image_price)} per image")
            else:
                say(
                    True,
                    f"{role} model {name}: {format_usd(model.prompt_price * 1_000_000)} / "
                    f"{format_usd(model.completion_price * 1_000_000)} per 1M tokens in / out",
                )
        say(*await _responses_report(settings, grok))
    return ok


async def _responses_report(settings: Settings, grok: GrokClient) -> tuple[bool, str]:
    """Whether interactive answers can use the Responses API (search tools) at this endpoint."""
    if settings.grokbot_xai_api == "chat":
        return True, "answers use Chat Completions (GROKBOT_XAI_API=chat): no web or X search"
    try:
        served = await grok.serves_responses()
    except BotError as exc:
        return False, f"could not try the Responses API (/v1/responses): {exc}"
    if served:
        return True, "Responses API (/v1/responses) served: answers may search the web and X"
    return False, "this endpoint does not serve /v1/responses: set GROKBOT_XAI_API=chat"


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
