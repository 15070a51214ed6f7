"""The digest tables behind values: each workspace's schedules, due slots claimed once across
instances, and run rows that move only while this instance holds their lease."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import ColumnElement, Update, delete, func, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

from bot.db import Sessions, conflict_insert
from bot.digests.recurrence import Schedule
from bot.jobs import DIGESTS, LeaseLost, announce, claimable
from bot.platform import Place
from bot.tables import DigestRun, DigestSchedule

RunStatus = Literal["running", "posting", "posted", "empty", "failed"]


@dataclass(frozen=True)
class DigestInfo:
    """A digest schedule: what is summarised, where and when it is posted, and by whose wish."""

    id: int
    place: Place  # where it is posted
    channel: str  # the channel summarised
    schedule: Schedule
    next_run_at: datetime
    since: datetime | None  # the next run summarises messages from here on
    post_when_empty: bool
    created_by: str

    @property
    def description(self) -> str:
        return self.schedule.describe()


@dataclass(frozen=True)
class Lease:
    """Who holds a run row, and until when."""

    owner: str
    until: datetime


@dataclass(frozen=True)
class SlotRun:
    """The run of one digest slot; the slot is the end of the period it summarises."""

    id: int
    digest_id: int
    slot: datetime
    status: RunStatus = "running"


class DigestStore:
    """The SQL of digests; every method is one transaction. Adding or removing a schedule is
    announced to the other instances (PostgreSQL), as sent by `instance`."""

    def __init__(self, sessions: Sessions, *, instance: str = "") -> None:
        self._sessions = sessions
        self._me = instance

    # -- schedules --------------------------------------------------------------------------

    async def add(self, draft: DigestInfo, *, created_at: datetime, at_most: int) -> DigestInfo | None:
        """Store `draft` under a new id; None when its workspace has `at_most` digests already."""
        async with self._sessions.begin() as session:
            count = await session.exec(
                select(func.count()).select_from(DigestSchedule).where(*_in_workspace(draft.place))
            )
            if count.one() >= at_most:
                return None
            row = _row(draft, created_at)
            session.add(row)
            await session.flush()
            await announce(session, DIGESTS, sender=self._me)
            return _info(row)

    async def in_workspace(self, place: Place) -> list[DigestInfo]:
        """The digests of `place`'s workspace, oldest first."""
        async with self._sessions() as session:
            rows = await session.exec(
                select(DigestSchedule).where(*_in_workspace(place)).order_by(col(DigestSchedule.id))
            )
            return [_info(row) for row in rows.all()]

    async def find(self, place: Place, digest_id: int) -> DigestInfo | None:
        """Digest `digest_id` if it belongs to `place`'s workspace."""
        async with self._sessions() as session:
            found = await session.exec(
                select(DigestSchedule).where(*_in_workspace(place), col(DigestSchedule.id) == digest_id)
            )
            row = found.one_or_none()
        return None if row is None else _info(row)

    async def digest(self, digest_id: int) -> DigestInfo | None:
        async with self._sessions() as session:
            row = await session.get(DigestSchedule, digest_id)
        return None if row is None else _info(row)

    async def delete(self, digest_id: int) -> bool:
        """Delete a digest and (by the cascade) its runs; False when it was gone already."""
        async with self._sessions.begin() as session:
            deleted = await session.exec(delete(DigestSchedule).where(col(DigestSchedule.id) == digest_id))
            await announce(session, DIGESTS, sender=self._me)
        return deleted.rowcount == 1

    # -- slots and runs ---------------------------------------------------------------------

    async def due(self, platforms: Collection[str], now: datetime) -> list[DigestInfo]:
        """The enabled digests of `platforms` whose next run is at or before `now`, earliest first."""
        async with self._sessions() as session:
            rows = await session.exec(
                select(DigestSchedule)
                .where(
                    col(DigestSchedule.enabled),
                    col(DigestSchedule.platform).in_(list(platforms)),
                    col(DigestSchedule.next_run_at) <= now,
                )
                .order_by(col(DigestSchedule.next_run_at))
                .limit(100)
            )
            return [_info(row) for row in rows.all()]

    async def next_due(self, platforms: Collection[str]) -> datetime | None:
        """When `platforms`' digests next need a tick: the earliest next run of an enabled schedule,
        or the earliest end of an unfinished run's lease (its instance may have died); None if none."""
        async with self._sessions() as session:
            next_run = await session.exec(
                select(func.min(DigestSchedule.next_run_at)).where(
                    col(DigestSchedule.enabled), col(DigestSchedule.platform).in_(list(platforms))
                )
            )
            lease_end = await session.exec(
                select(func.min(DigestRun.lease_until)).where(
                    col(DigestRun.status).in_(["running", "posting"]),
                    col(DigestRun.digest_id).in_(_digests_of(platforms)),
                )
            )
            moments = [next_run.one(), lease_end.one()]
        return min((moment for moment in moments if moment is not None), default=None)

    async def claim_slot(
        self, digest: DigestInfo, *, slot: datetime, following: datetime | None, lease: Lease, now: datetime
    ) -> tuple[SlotRun, DigestInfo] | None:
        """Move `digest`'s next run to `following` and start the slot's run under `lease`.

        Returns the run and the digest as it is now, or None when another instance moved the digest
        first or the slot has a run already."""
        async with self._sessions.begin() as session:
            if not await _move_next_run(session, digest, following):
                return None
            run_id = await _start_run(session, digest.id, slot=slot, lease=lease, now=now)
            # Read again after winning: the period starts where the previous run really ended.
            fresh = await session.get(DigestSchedule, digest.id, populate_existing=True)
        return None if run_id is None or fresh is None else (SlotRun(run_id, digest.id, slot), _info(fresh))

    async def claim_stale(self, platforms: Collection[str], *, lease: Lease, now: datetime) -> list[SlotRun]:
        """Lease the unfinished runs of `platforms`' digests whose lease expired (their instance died)."""
        stale: list[ColumnElement[bool]] = [
            col(DigestRun.status).in_(["running", "posting"]),
            col(DigestRun.lease_until) < now,
            col(DigestRun.digest_id).in_(_digests_of(platforms)),  # another instance may serve others
        ]
        async with self._sessions.begin() as session:
            pick = select(col(DigestRun.id)).where(*stale).order_by(col(DigestRun.lease_until)).limit(20)
            claimed = await session.exec(
                update(DigestRun)
                .where(col(DigestRun.id).in_(claimable(session, pick)), *stale)
                .values(lease_owner=lease.owner, lease_until=lease.until)
                .returning(
                    col(DigestRun.id), col(DigestRun.digest_id), col(DigestRun.slot), col(DigestRun.status)
                )
                .execution_options(synchronize_session=False)
            )
            return [SlotRun(r.id, r.digest_id, r.slot, r.status) for r in claimed.all()]

    async def renew(self, run_id: int, lease: Lease) -> None:
        """Extend the lease on a running run; LeaseLost when `lease.owner` holds it no longer."""
        await self._move(run_id, "running", "running", lease)

    async def start_posting(self, run_id: int, lease: Lease, *, message_count: int) -> None:
        """Mark the run `posting` before its first post; LeaseLost when it is not ours."""
        await self._move(run_id, "running", "posting", lease, message_count=message_count)

    async def close(
        self,
        run: SlotRun,
        end: RunStatus,
        *,
        owner: str,
        now: datetime,
        period_done: bool = False,
        error: str | None = None,
        cost_ticks: int = 0,
    ) -> None:
        """Move `run` from its status to `end` and release its lease (LeaseLost when `owner` does not
        hold it); `period_done`: the digest's next run starts at this run's slot."""
        async with self._sessions.begin() as session:
            moved = await session.exec(
                _leased_run(run.id, run.status, owner).values(
                    status=end,
                    lease_owner=None,
                    lease_until=None,
                    finished_at=now,
                    error=error[:2000] if error else error,
                    cost_ticks=cost_ticks,
                )
            )
            if moved.rowcount != 1:
                raise LeaseLost
            if period_done:
                await session.exec(_period_done(run.digest_id, run.slot))

    async def _move(self, run_id: int, start: RunStatus, end: RunStatus, lease: Lease, **values: int) -> None:
        async with self._sessions.begin() as session:
            moved = await session.exec(
                _leased_run(run_id, start, lease.owner).values(status=end, lease_until=lease.until, **values)
            )
        if moved.rowcount != 1:
            raise LeaseLost


async def _move_next_run(session: AsyncSession, digest: DigestInfo, following: datetime | None) -> bool:
    """Compare-and-set: exactly one instance moves next_run_at from the value it read."""
    won = await session.exec(
        update(DigestSchedule)
        .where(col(DigestSchedule.id) == digest.id, col(DigestSchedule.next_run_at) == digest.next_run_at)
        .values(next_run_at=following or digest.next_run_at, enabled=following is not None)
        .execution_options(synchronize_session=False)
    )
    return won.rowcount == 1


async def _start_run(
    session: AsyncSession, digest_id: int, *, slot: datetime, lease: Lease, now: datetime
) -> int | None:
    """The slot's run, started under `lease`; None when the slot has a run already."""
    # UNIQUE(digest_id, slot) is the backstop: a slot that already has a run is not rerun.
    inserted = await session.exec(
        conflict_insert(session, DigestRun)
        .values(
            digest_id=digest_id,
            slot=slot,
            status="running",
            lease_owner=lease.owner,
            lease_until=lease.until,
            started_at=now,
        )
        .on_conflict_do_nothing(index_elements=["digest_id", "slot"])
        .returning(col(DigestRun.id))
    )
    return inserted.scalar_one_or_none()


def _leased_run(run_id: int, start: RunStatus, owner: str) -> Update:
    """UPDATE of run `run_id` in state `start` while `owner` holds its lease (else no row moves)."""
    return (
        update(DigestRun)
        .where(
            col(DigestRun.id) == run_id, col(DigestRun.status) == start, col(DigestRun.lease_owner) == owner
        )
        .execution_options(synchronize_session=False)
    )


def _period_done(digest_id: int, until: datetime) -> Update:
    """The digest's summarised period reaches `until` (never moved back)."""
    return (
        update(DigestSchedule)
        .where(col(DigestSchedule.id) == digest_id)
        .where((col(DigestSchedule.last_run_at).is_(None)) | (col(DigestSchedule.last_run_at) < until))
        .values(last_run_at=until)
        .execution_options(synchronize_session=False)
    )


def _digests_of(platforms: Collection[str]) -> SelectOfScalar[int | None]:
    """The ids of the digests posted to `platforms`."""
    return select(col(DigestSchedule.id)).where(col(DigestSchedule.platform).in_(list(platforms)))


def _in_workspace(place: Place) -> list[ColumnElement[bool]]:
    return [col(DigestSchedule.platform) == place.platform, col(DigestSchedule.workspace) == place.workspace]


def _row(draft: DigestInfo, created_at: datetime) -> DigestSchedule:
    return DigestSchedule(
        platform=draft.place.platform,
        workspace=draft.place.workspace,
        channel=draft.channel,
        post_channel=draft.place.channel,
        cron_expr=draft.schedule.cron,
        timezone=draft.schedule.timezone,
        post_when_empty=draft.post_when_empty,
        next_run_at=draft.next_run_at,
        last_run_at=draft.since,
        created_by=draft.created_by,
        created_at=created_at,
    )


def _info(row: DigestSchedule) -> DigestInfo:
    assert row.id is not None
    return DigestInfo(
        id=row.id,
        place=Place(row.platform, row.workspace, row.post_channel),
        channel=row.channel,
        schedule=Schedule(row.cron_expr, row.timezone),
        next_run_at=row.next_run_at,
        since=row.last_run_at,
        post_when_empty=row.post_when_empty,
        created_by=row.created_by,
    )
