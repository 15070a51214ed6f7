"""What the admin pages read and change beside the ledger: digest schedules (with their last run,
paused, resumed or removed), deferred answers by state, limits overrides, and xAI's refusals.
Queries return values.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, and_, delete, func, select, true, update

from bot.admin.ledger import Scope
from bot.db import Sessions
from bot.tables import DeferredRequest, DigestRun, DigestSchedule, QuotaOverride, XaiSignal, table_of

SCHEDULES = table_of(DigestSchedule)
RUNS = table_of(DigestRun)
DEFERRED = table_of(DeferredRequest)
SIGNALS = table_of(XaiSignal)
DEFERRED_STATES = ("pending", "fetched", "delivered", "failed", "expired")
DEFERRED_LIMIT = 100


@dataclass(frozen=True)
class DigestRow:
    id: int
    platform: str
    workspace: str
    channel: str
    post_channel: str
    schedule: str
    timezone: str
    enabled: bool
    next_run_at: datetime
    last_status: str
    last_run_at: datetime | None


@dataclass(frozen=True)
class DeferredRow:
    id: int
    platform: str
    workspace: str
    channel: str
    user_id: str
    model: str
    status: str
    attempts: int
    created_at: datetime
    delivered_at: datetime | None


@dataclass(frozen=True)
class Override:
    """An admin's limits for one user, field by field; None means the default."""

    daily_ticks: int | None
    monthly_ticks: int | None
    daily_images: int | None
    set_by: str
    updated_at: datetime


@dataclass(frozen=True)
class Signals:
    """xAI's refusals seen since some time: counts and the latest, per kind."""

    counts: dict[str, int]
    last: dict[str, datetime]


def _in(
    table_platform: ColumnElement[str], table_workspace: ColumnElement[str], scope: Scope | None
) -> ColumnElement[bool]:
    if scope is None:
        return true()
    return and_(table_platform == scope.platform, table_workspace == scope.workspace)


async def digests(sessions: Sessions, scope: Scope | None) -> list[DigestRow]:
    """Digest schedules, soonest first, each with its latest run."""
    latest = (
        select(RUNS.c.digest_id, func.max(RUNS.c.slot).label("slot")).group_by(RUNS.c.digest_id).subquery()
    )
    query = (
        select(
            *(SCHEDULES.c[name] for name in ("id", "platform", "workspace", "channel", "post_channel")),
            SCHEDULES.c.cron_expr.label("schedule"),
            SCHEDULES.c.timezone,
            SCHEDULES.c.enabled,
            SCHEDULES.c.next_run_at,
            func.coalesce(RUNS.c.status, "").label("last_status"),
            func.coalesce(RUNS.c.finished_at, RUNS.c.started_at).label("last_run_at"),
        )
        .outerjoin(latest, latest.c.digest_id == SCHEDULES.c.id)
        .outerjoin(RUNS, and_(RUNS.c.digest_id == SCHEDULES.c.id, RUNS.c.slot == latest.c.slot))
        .where(_in(SCHEDULES.c.platform, SCHEDULES.c.workspace, scope))
        .order_by(SCHEDULES.c.next_run_at, SCHEDULES.c.id)
    )
    async with sessions() as session:
        rows = (await (await session.connection()).execute(query)).all()
    return [DigestRow(**row._mapping) for row in rows]


async def set_digest_enabled(
    sessions: Sessions, digest_id: int, *, enabled: bool, scope: Scope | None
) -> bool:
    """Pause or resume one digest; False when there is no such digest in the scope."""
    statement = (
        update(DigestSchedule)
        .where(SCHEDULES.c.id == digest_id, _in(SCHEDULES.c.platform, SCHEDULES.c.workspace, scope))
        .values(enabled=enabled)
    )
    async with sessions.begin() as session:
        result = await (await session.connection()).execute(statement)
    return bool(getattr(result, "rowcount", 0))


async def remove_digest(sessions: Sessions, digest_id: int, *, scope: Scope | None) -> bool:
    """Delete one digest and its runs; False when there is no such digest in the scope."""
    where = (SCHEDULES.c.id == digest_id, _in(SCHEDULES.c.platform, SCHEDULES.c.workspace, scope))
    async with sessions.begin() as session:
        found = (await (await session.connection()).execute(select(SCHEDULES.c.id).where(*where))).first()
        if found is None:
            return False
        await (await session.connection()).execute(delete(DigestRun).where(RUNS.c.digest_id == digest_id))
        await (await session.connection()).execute(delete(DigestSchedule).where(*where))
    return True


async def deferred(sessions: Sessions, scope: Scope | None) -> dict[str, list[DeferredRow]]:
    """Deferred answers by state, newest first (the latest hundred of each state)."""
    found: dict[str, list[DeferredRow]] = {}
    fields = ("id", "platform", "workspace", "channel", "user_id", "model", "status", "attempts")
    async with sessions() as session:
        for state in DEFERRED_STATES:
            query = (
                select(*(DEFERRED.c[name] for name in fields), DEFERRED.c.created_at, DEFERRED.c.delivered_at)
                .where(DEFERRED.c.status == state, _in(DEFERRED.c.platform, DEFERRED.c.workspace, scope))
                .order_by(DEFERRED.c.created_at.desc())
                .limit(DEFERRED_LIMIT)
            )
            found[state] = [
                DeferredRow(**row._mapping)
                for row in (await (await session.connection()).execute(query)).all()
            ]
    return found


async def override_of(sessions: Sessions, user: Scope, user_id: str) -> Override | None:
    table = table_of(QuotaOverride)
    query = select(
        table.c.daily_ticks, table.c.monthly_ticks, table.c.daily_images, table.c.set_by, table.c.updated_at
    ).where(
        table.c.platform == user.platform, table.c.workspace == user.workspace, table.c.user_id == user_id
    )
    async with sessions() as session:
        row = (await (await session.connection()).execute(query)).first()
    return None if row is None else Override(*row)


async def signals(sessions: Sessions, *, since: datetime) -> Signals:
    """xAI's refusals counted since `since` (whole hours), per kind."""
    query = (
        select(SIGNALS.c.kind, func.sum(SIGNALS.c.count), func.max(SIGNALS.c.last_at))
        .where(SIGNALS.c.hour >= since)
        .group_by(SIGNALS.c.kind)
    )
    async with sessions() as session:
        rows = (await (await session.connection()).execute(query)).all()
    return Signals({kind: int(n) for kind, n, _ in rows}, {kind: last for kind, _, last in rows})
