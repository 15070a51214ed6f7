"""Platform rate budgets shared by every instance on one database (issue 15, part 2).

Slack counts a workspace's calls and Discord a bot's, whichever process makes them; each process
paces its own. So each instance leases a share of every budget: it beats a heartbeat row (component
"rates") in the background, counts the instances whose row is fresh, and paces at 1/N of each limit
(`bot.streaming.Shares`, which the engine's edit budgets and the adapters' pacers follow). Alone, it
owns the whole budget. Nothing of this is on the hot path: a call never waits for the database.

A newcomer says so at once (a NOTIFY on PostgreSQL, heard by the others' Notices), so the others
take their smaller share before the newcomer serves anything; an instance that stops deletes its row
and says so, so the others take its share back; one that dies stops beating and its share returns
after LIVE_RENEWALS renewals.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime, timedelta

import asyncpg
from sqlalchemy import delete, func
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import col, select

from bot.db import Sessions
from bot.jobs.notices import Notices, announce
from bot.jobs.timer import RATES_COMPONENT, beat_all
from bot.streaming import Shares
from bot.tables import Heartbeat

log = logging.getLogger(__name__)

COMPONENT = RATES_COMPONENT
CHANNEL = "grokbot_rates"  # an instance came or went: count again now
# Seconds between two renewals of the lease. Newcomers and leavers are heard at once (NOTIFY on
# PostgreSQL), so the renewal only finds crashed instances (and, on SQLite, newcomers); every 30 s
# keeps an idle process idle (two short transactions a minute, as the scheduler's heartbeat).
RENEW_S = 30.0
LOST = (SQLAlchemyError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError)  # the database away
LIVE_RENEWALS = 3  # an instance that has not renewed for this many intervals holds no share


class RateLease:
    """Keeps `shares` at 1/N, N the instances alive on this database."""

    def __init__(
        self,
        sessions: Sessions,
        shares: Shares,
        *,
        instance_id: str,
        clock: Callable[[], datetime],
        notices: Notices | None = None,
        renew_s: float = RENEW_S,
    ) -> None:
        self._sessions = sessions
        self._shares = shares
        self._me = instance_id[:64]
        self._clock = clock
        self._renew_s = renew_s
        self._live = timedelta(seconds=LIVE_RENEWALS * renew_s)
        self._heard = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.instances = 1
        if notices is not None:
            notices.on(CHANNEL, self._heard.set)

    async def renew(self) -> int:
        """Beat, count the instances alive, and set the share: one short transaction."""
        now = self._clock()
        await beat_all(self._sessions, instance=self._me, components=[COMPONENT], now=now)
        query = select(func.count(func.distinct(col(Heartbeat.instance)))).where(
            col(Heartbeat.component) == COMPONENT, col(Heartbeat.beat_at) >= now - self._live
        )
        async with self._sessions() as session:
            alive = int((await session.exec(query)).one())
        self.instances = max(1, alive)
        self._shares.set(1.0 / self.instances)
        return self.instances

    async def start(self) -> None:
        """Take this instance's share before it serves anything, tell the others, and renew it in
        the background."""
        await self.renew()
        await self._announce()
        if self.instances > 1:
            log.info("%d instances share the platforms' rate limits", self.instances)
        self._task = asyncio.get_running_loop().create_task(self._keep(), name="rate-lease")

    async def stop(self) -> None:
        """Give the share back: the others take it at once (or when it lapses, without a notice)."""
        task, self._task = self._task, None
        if task is None:
            return  # never taken (a command that serves nobody)
        task.cancel()
        await asyncio.wait({task})
        try:
            async with self._sessions.begin() as session:
                await session.exec(
                    delete(Heartbeat).where(
                        col(Heartbeat.instance) == self._me, col(Heartbeat.component) == COMPONENT
                    )
                )
                await announce(session, CHANNEL, sender=self._me)
        except LOST as exc:  # stopping goes on: the row lapses anyway
            log.warning("could not give back the rate share: %s", type(exc).__name__)

    async def _announce(self) -> None:
        async with self._sessions.begin() as session:
            await announce(session, CHANNEL, sender=self._me)

    async def _keep(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._renew_s):
                    await self._heard.wait()
            self._heard.clear()
            try:
                await self.renew()
            except LOST as exc:  # the database is away: keep the last share, try again
                log.warning("could not renew the rate share: %s", type(exc).__name__)
