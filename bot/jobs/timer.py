"""Jobs: when this process works. An Alarm each for the deferred requests and the digest slots wakes
when the database says the next one is due, or at once when rung (a submit, a schedule added or
removed, another instance's notice); two more keep the fixed intervals (the heartbeat that /readyz
and the live-instance check read, and maintenance). An idle process wakes only for those."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from sqlmodel import col, select

from bot.db import Sessions, conflict_insert
from bot.jobs.deferred import Deferrals
from bot.jobs.notices import DEFERRED, DIGESTS, Notices
from bot.jobs.wakeups import Alarm, Bell, Sleep
from bot.tables import Heartbeat

BEAT_INTERVAL = 30.0  # seconds between two heartbeats of a running process
# A beat this recent means the process lives: two beats in a row may be late or lost.
HEARTBEAT_WINDOW = timedelta(seconds=3 * BEAT_INTERVAL)
# The rate lease's row (bot/jobs/shares.py): a sign of life, but not of the scheduler's.
RATES_COMPONENT = "rates"


class DigestTicker(Protocol):
    changed: Bell  # rings when a schedule is added or removed here

    async def tick(self) -> int:
        """Claim and run the digest slots that are due; returns how many ran."""
        ...

    async def next_due(self) -> datetime | None:
        """When the next slot (or an abandoned run's lease) comes due; None when there is none."""
        ...


@dataclass(frozen=True)
class _Claimer:
    """What an alarm wakes: when its work is due, the work, and what rings it early."""

    name: str
    next_due: Callable[[], Awaitable[datetime | None]]
    run: Callable[[], Awaitable[int]]
    rung_by: Bell  # in-process
    channel: str  # other instances' notices
    idle: float  # the longest pause: a safety look, for a notice lost on the way


@dataclass(frozen=True)
class Pace:
    """How often Jobs wakes, in seconds."""

    least: float = 0.5  # the shortest pause between two wake-ups of a claimer: never a busy loop
    deferred_idle: float = 60.0  # the longest: the safety look at the deferred requests
    digests_idle: float = 300.0  # and at the digest slots
    beat: float = BEAT_INTERVAL
    maintenance: float = 900.0


class Jobs:
    """The alarms of one process: its claimers, its heartbeat and maintenance. Durable state and
    cross-instance safety live in the tables; `clock` is the database's time and `sleep` the
    alarms' pause (both injected in tests, which then drive time themselves)."""

    def __init__(
        self,
        *,
        sessions: Sessions,
        deferrals: Deferrals | None,
        digests: DigestTicker | None,
        clock: Callable[[], datetime],
        instance_id: str,
        pace: Pace = Pace(),
        batch: int = 20,
        maintenance: Callable[[], Awaitable[None]] | None = None,
        notices: Notices | None = None,
        sleep: Sleep = asyncio.sleep,
        orphans: Callable[[], Awaitable[int]] | None = None,
        orphans_once: bool = False,
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self._me = instance_id[:64]
        self._pace = pace
        self._batch = batch
        self._notices = notices
        self._sleep = sleep
        # Closes answers dead processes left in progress: after each beat, or after the first only
        # (`orphans_once`: where no other process can die meanwhile, as on SQLite's one process).
        self._orphans = orphans
        self._orphans_once = orphans_once
        self._claimers = [self._alarm(claimer) for claimer in self._claimers_of(deferrals, digests)]
        # (alarm, seconds before its first run): the first heartbeat at once (ready as soon as we
        # run); maintenance (price refresh, sweeps: housekeeping that may run anywhere) later.
        self._intervals = [(self._every("heartbeat", pace.beat, self._beat), 0.0)]
        if maintenance is not None:
            self._intervals.append(
                (self._every("maintenance", pace.maintenance, maintenance), pace.maintenance)
            )
        self._stopping = False

    def start(self) -> None:
        """Start the alarms inside the running event loop; each claimer looks at once, so that a
        restart picks up waiting work."""
        self._stopping = False
        for alarm in self._claimers:
            alarm.start()
        for alarm, after in self._intervals:
            alarm.start(after=after)
        if self._notices is not None:
            self._notices.start()

    async def stop(self, *, grace: float = 10.0) -> None:
        """Let running work finish (up to `grace` seconds), then stop every alarm."""
        self._stopping = True
        alarms = [*self._claimers, *(alarm for alarm, _ in self._intervals)]
        await asyncio.gather(*(alarm.stop(grace=grace) for alarm in alarms))
        if self._notices is not None:
            await self._notices.stop()

    def _claimers_of(self, deferrals: Deferrals | None, digests: DigestTicker | None) -> list[_Claimer]:
        pace, claimers = self._pace, []
        if deferrals is not None:
            drain = self._drainer(deferrals)
            claimers.append(
                _Claimer("deferred", deferrals.next_due, drain, deferrals.added, DEFERRED, pace.deferred_idle)
            )
        if digests is not None:
            claimers.append(
                _Claimer(
                    "digests", digests.next_due, digests.tick, digests.changed, DIGESTS, pace.digests_idle
                )
            )
        return claimers

    def _alarm(self, claimer: _Claimer) -> Alarm:
        """An alarm that runs the claimer when it says it is due, rung by its bell and its notices."""

        async def wake() -> float | None:
            due = await claimer.next_due()
            if due is not None and due <= self._clock():
                await claimer.run()
                due = await claimer.next_due()
            return None if due is None else (due - self._clock()).total_seconds()

        alarm = Alarm(claimer.name, wake, least=self._pace.least, idle=claimer.idle, sleep=self._sleep)
        claimer.rung_by.listen(alarm.ring)
        if self._notices is not None:
            self._notices.on(claimer.channel, alarm.ring)
        return alarm

    def _every(self, name: str, interval: float, work: Callable[[], Awaitable[None]]) -> Alarm:
        return Alarm(name, work, least=interval, idle=interval, sleep=self._sleep)

    def _drainer(self, deferrals: Deferrals) -> Callable[[], Awaitable[int]]:
        async def drain() -> int:
            """Batches until fewer than a batch were due."""
            total = 0
            while True:
                claimed = await deferrals.poll_due(limit=self._batch)
                total += claimed
                if claimed < self._batch or self._stopping:
                    return total

        return drain

    async def _beat(self) -> None:
        """One heartbeat row per living claimer: a claimer whose loop ended does not beat."""
        components = [alarm.name for alarm in self._claimers if alarm.alive]
        if components:
            await beat_all(self._sessions, instance=self._me, components=components, now=self._clock())
        if self._orphans is not None and not self._stopping:
            await self._orphans()
            if self._orphans_once:
                self._orphans = None


async def beat(sessions: Sessions, *, instance: str, component: str, now: datetime) -> None:
    """Upsert this process part's heartbeat (read by /readyz)."""
    await beat_all(sessions, instance=instance, components=[component], now=now)


async def beat_all(sessions: Sessions, *, instance: str, components: Sequence[str], now: datetime) -> None:
    """Upsert the heartbeats of several parts of this process, in one statement."""
    async with sessions.begin() as session:
        statement = conflict_insert(session, Heartbeat).values(
            [{"instance": instance[:64], "component": component, "beat_at": now} for component in components]
        )
        await session.exec(
            statement.on_conflict_do_update(
                index_elements=["instance", "component"], set_={"beat_at": statement.excluded.beat_at}
            )
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
    max_age: timedelta = HEARTBEAT_WINDOW,
) -> Callable[[], Awaitable[bool]]:
    """A /readyz check (bot.web's Check): this instance's claimers beat within `max_age`."""

    async def check() -> bool:
        beats = await heartbeats(sessions, instance=instance)
        return any(
            clock() - beat_at <= max_age for _, component, beat_at in beats if component != RATES_COMPONENT
        )

    return check
