"""Shared pieces of the deferred and digest tests: an injectable clock and the alarms' pauses on it,
quotas, row readers, the SQL an engine ran, and a deferred-request repository in a process that dies
at a chosen point."""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select

from bot.db import Sessions
from bot.jobs import DeferredRequests, Jobs
from bot.platform import Place
from bot.quotas import Quotas
from bot.settings import Settings
from bot.tables import DeferredRequest, DigestRun, DigestSchedule, QuotaCounter, QuotaReservation, UsageEvent
from tests.fakes.platform import FakePlatform

START = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)  # a Thursday


@dataclass
class Clock:
    now: datetime = field(default_factory=lambda: START)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@dataclass
class Timeline:
    """The alarms' `sleep` on a test's clock: a pause ends only when `advance` moves the clock past
    its end, so a test that never advances has alarms that wake only when rung."""

    clock: Clock
    pauses: list[tuple[datetime, asyncio.Future[None]]] = field(default_factory=list)
    begun: int = 0  # pauses begun so far, by every alarm
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def sleep(self, seconds: float) -> None:
        pause = (self.clock.now + timedelta(seconds=seconds), asyncio.get_running_loop().create_future())
        self.pauses.append(pause)
        async with self._changed:
            self.begun += 1
            self._changed.notify_all()
        try:
            await pause[1]
        finally:
            self.pauses.remove(pause)

    async def until_paused(self, count: int) -> None:
        """Return once `count` pauses have begun in all (5 s at most)."""
        async with asyncio.timeout(5), self._changed:
            await self._changed.wait_for(lambda: self.begun >= count)

    async def advance(self, seconds: float) -> None:
        """Move the clock on; the pauses that end by then end, and this returns once each of their
        alarms has done its work and paused again."""
        self.clock.advance(seconds=seconds)
        ending = [future for end, future in self.pauses if end <= self.clock.now and not future.done()]
        target = self.begun + len(ending)
        for future in ending:
            future.set_result(None)
        await self.until_paused(target)


@dataclass
class Statements:
    """The SQL statements an engine ran (whitespace folded), seen by a SQLAlchemy event listener."""

    seen: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, engine: AsyncEngine) -> Statements:
        statements = cls()
        event.listen(engine.sync_engine, "before_cursor_execute", statements._record)
        return statements

    def _record(self, _connection: Any, _cursor: Any, statement: str, *_: Any) -> None:
        self.seen.append(" ".join(statement.split()))

    def count(self, fragment: str) -> int:
        """How many statements contain `fragment` (case-insensitive)."""
        return sum(fragment.lower() in statement.lower() for statement in self.seen)


class Crash(BaseException):
    """A simulated process death: nothing in the code under test catches it."""


@dataclass(frozen=True)
class CrashPoint:
    """Where a process dies: at the `nth` call of one DeferredRequests method, just after it
    committed or (after=False) just before it ran."""

    method: str
    after: bool = True
    nth: int = 1


class CrashingRequests(DeferredRequests):
    """The real repository, in a process that dies (raises Crash) at `crash`."""

    def __init__(self, *args: Any, crash: CrashPoint, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        real = getattr(self, crash.method)
        calls = itertools.count(1)

        async def dying(*args: Any, **kwargs: Any) -> Any:
            due = next(calls) == crash.nth
            if due and not crash.after:
                raise Crash(f"before {crash.method}")
            result = await real(*args, **kwargs)
            if due:
                raise Crash(f"after {crash.method}")
            return result

        setattr(self, crash.method, dying)  # shadows the method for this instance only


@dataclass
class SignallingPlatform(FakePlatform):
    """A FakePlatform that sets `posted` on every post, for tests driven by the real timer."""

    posted: asyncio.Event = field(default_factory=asyncio.Event)

    async def post_text(self, place: Place, text: str, *, private_to: str = "") -> str:
        message_id = await super().post_text(place, text, private_to=private_to)
        self.posted.set()
        return message_id


def timed_jobs(sessions: Sessions, timeline: Timeline, *, instance: str, **kwargs: Any) -> Jobs:
    """Jobs of one instance whose alarms pause on `timeline` (the test's clock); kwargs: Jobs's
    (deferrals and digests default to none)."""
    kwargs = {"deferrals": None, "digests": None, **kwargs}
    return Jobs(sessions=sessions, clock=timeline.clock, instance_id=instance, sleep=timeline.sleep, **kwargs)


async def run_until(jobs: Jobs, event: asyncio.Event) -> None:
    """Start the timer, wait until `event` is set (5 s at most), and stop it."""
    jobs.start()
    try:
        async with asyncio.timeout(5):
            await event.wait()
    finally:
        await jobs.stop()


def make_quotas(sessions: Sessions, clock: Clock, **values: Any) -> Quotas:
    values.setdefault("grokbot_timezone", "UTC")
    return Quotas(sessions, Settings(_env_file=None, **values), clock=clock)  # type: ignore[call-arg]


async def deferred_rows(sessions: Sessions) -> list[DeferredRequest]:
    async with sessions() as session:
        rows = await session.exec(select(DeferredRequest).order_by(col(DeferredRequest.id)))
        return list(rows.all())


async def reservation_states(sessions: Sessions) -> list[str]:
    async with sessions() as session:
        rows = await session.exec(select(QuotaReservation.state).order_by(col(QuotaReservation.id)))
        return list(rows.all())


async def ledger(sessions: Sessions) -> list[UsageEvent]:
    async with sessions() as session:
        rows = await session.exec(select(UsageEvent).order_by(col(UsageEvent.id)))
        return list(rows.all())


async def counters(sessions: Sessions) -> dict[tuple[str, str], int]:
    async with sessions() as session:
        rows = (await session.exec(select(QuotaCounter))).all()
        return {(r.subject, r.period_key): r.used for r in rows}


async def digest_runs(sessions: Sessions) -> list[DigestRun]:
    async with sessions() as session:
        rows = await session.exec(select(DigestRun).order_by(col(DigestRun.digest_id), col(DigestRun.slot)))
        return list(rows.all())


async def digest_schedules(sessions: Sessions) -> list[DigestSchedule]:
    async with sessions() as session:
        rows = await session.exec(select(DigestSchedule).order_by(col(DigestSchedule.id)))
        return list(rows.all())
