"""The in-process timer (APScheduler as a clock only) that wakes the database claimers of deferred
requests and digest slots, and the per-tick heartbeats that /readyz reads."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlmodel import col, select

from bot.db import Sessions, conflict_insert
from bot.jobs.deferred import Deferrals
from bot.tables import Heartbeat


class DigestTicker(Protocol):
    async def tick(self) -> int:
        """Claim and run the digest slots that are due; returns how many ran."""
        ...


class Jobs:
    """APScheduler 3.x as an in-process timer only: interval jobs wake the database claimers.

    Durable state and cross-instance safety live in the tables; the job store is in memory."""

    def __init__(
        self,
        *,
        sessions: Sessions,
        deferrals: Deferrals | None,
        digests: DigestTicker | None,
        clock: Callable[[], datetime],
        instance_id: str,
        poll_interval: float = 2.0,
        digest_interval: float = 30.0,
        batch: int = 20,
        maintenance: Callable[[], Awaitable[None]] | None = None,
        maintenance_interval: float = 900.0,
    ) -> None:
        self._sessions = sessions
        self._deferrals = deferrals
        self._digests = digests
        self._clock = clock
        self._me = instance_id[:64]
        self._poll_interval = poll_interval
        self._digest_interval = digest_interval
        self._batch = batch
        self._maintenance = maintenance  # price refresh, sweeps: housekeeping that may run anywhere
        self._maintenance_interval = maintenance_interval
        self._scheduler: AsyncIOScheduler | None = None
        self._running: set[asyncio.Task[Any]] = set()
        self._stopping = False

    def start(self) -> None:
        """Add the interval jobs and start the timer (inside the running event loop)."""
        scheduler = AsyncIOScheduler(timezone="UTC")
        common: dict[str, Any] = {"max_instances": 1, "coalesce": True, "misfire_grace_time": None}
        # APScheduler keeps real time (the injected clock is for database state); the first run is
        # immediate so that a restart picks up waiting work at once.
        first = datetime.now(UTC)
        if self._deferrals is not None:
            scheduler.add_job(
                self.poll_deferred,
                "interval",
                seconds=self._poll_interval,
                id="deferred-poll",
                next_run_time=first,
                **common,
            )
        if self._digests is not None:
            scheduler.add_job(
                self.tick_digests,
                "interval",
                seconds=self._digest_interval,
                id="digest-tick",
                next_run_time=first,
                **common,
            )
        if self._maintenance is not None:
            scheduler.add_job(
                self._maintenance, "interval", seconds=self._maintenance_interval, id="maintenance", **common
            )
        scheduler.start()
        self._scheduler = scheduler
        self._stopping = False

    async def stop(self, *, grace: float = 10.0) -> None:
        """Let running ticks finish (up to `grace` seconds), then stop the timer."""
        self._stopping = True
        if self._running:
            await asyncio.wait(set(self._running), timeout=grace)
        if self._scheduler is not None and self._scheduler.running:
            self._scheduler.shutdown(wait=False)
            await asyncio.sleep(0)  # the shutdown is scheduled on the loop; let it run
        self._scheduler = None

    async def poll_deferred(self) -> int:
        """One deferred tick: a heartbeat, then batches until nothing more is due."""
        if self._stopping or self._deferrals is None:
            return 0
        return await self._tracked(self._drain(self._deferrals))

    async def tick_digests(self) -> int:
        if self._stopping or self._digests is None:
            return 0
        return await self._tracked(self._digest_tick(self._digests))

    async def _drain(self, deferrals: Deferrals) -> int:
        await beat(self._sessions, instance=self._me, component="deferred", now=self._clock())
        total = 0
        while not self._stopping:
            claimed = await deferrals.poll_due(limit=self._batch)
            total += claimed
            if claimed < self._batch:
                break
        return total

    async def _digest_tick(self, digests: DigestTicker) -> int:
        await beat(self._sessions, instance=self._me, component="digests", now=self._clock())
        return await digests.tick()

    async def _tracked(self, work: Awaitable[int]) -> int:
        task = asyncio.current_task()
        if task is not None:
            self._running.add(task)
        try:
            return await work
        finally:
            if task is not None:
                self._running.discard(task)


async def beat(sessions: Sessions, *, instance: str, component: str, now: datetime) -> None:
    """Upsert this process part's heartbeat (read by /readyz)."""
    async with sessions.begin() as session:
        statement = conflict_insert(session, Heartbeat).values(
            instance=instance[:64], component=component, beat_at=now
        )
        await session.exec(
            statement.on_conflict_do_update(index_elements=["instance", "component"], set_={"beat_at": now})
        )


async def heartbeats(
    sessions: Sessions, *, instance: str | None = None
) -> Sequence[tuple[str, str, datetime]]:
    """(instance, component, beat_at) of every heartbeat (or one instance's), newest first."""
    query = select(col(Heartbeat.instance), col(Heartbeat.component), col(Heartbeat.beat_at))
    if instance is not None:
        query = query.where(col(Heartbeat.instance) == instance[:64])
    async with sessions() as session:
        rows = (await session.exec(query.order_by(col(Heartbeat.beat_at).desc()))).all()
    return [(instance, component, beat_at) for instance, component, beat_at in rows]


def heartbeat_check(
    sessions: Sessions,
    *,
    instance: str,
    clock: Callable[[], datetime],
    max_age: timedelta = timedelta(seconds=90),
) -> Callable[[], Awaitable[bool]]:
    """A /readyz check (bot.web's Check): this instance's timer beat within `max_age`."""

    async def check() -> bool:
        beats = await heartbeats(sessions, instance=instance)
        return any(clock() - beat_at <= max_age for _, _, beat_at in beats)

    return check
