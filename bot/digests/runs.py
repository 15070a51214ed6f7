"""Digest runs: due slots claimed in the database, abandoned runs taken over, and the ScheduledRun
that keeps a slot's run leased and recorded while it is made (the states are drawn in bot.digests)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy.exc import SQLAlchemyError

from bot.digests.making import DigestJob, DigestMaker, OutcomeStatus
from bot.digests.store import DigestInfo, DigestStore, Lease, RunStatus, SlotRun
from bot.jobs import LeaseLost
from bot.platform import Place, Platform

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class LeaseTerms:
    """How this instance holds run rows: its name, the lease length, and the pause between renewals
    (a third of the lease; `sleep` is injected so that tests pace renewals by events)."""

    owner: str
    length: timedelta
    renew_every: float
    clock: Callable[[], datetime]
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep

    def lease(self) -> Lease:
        return Lease(self.owner, self.clock() + self.length)


class ScheduledRun:
    """The occasion of a claimed slot: its run row leased while the channel is read, its states
    moved as the digest is posted, and its period advanced when done."""

    retry = "These messages will be included in the next digest."

    def __init__(self, store: DigestStore, terms: LeaseTerms, run: SlotRun) -> None:
        self._store = store
        self._terms = terms
        self._run = run

    @property
    def slot(self) -> datetime:
        return self._run.slot

    async def hold(self, work: Coroutine[Any, Any, T]) -> T:
        """Run `work` while renewing the run's lease every third of it: reading a busy channel's
        history can take minutes (Slack allows some apps one page a minute). A lost lease cancels
        `work` and raises LeaseLost; a renewal that fails for another reason (the database busy or
        unreachable for a moment) is tried again at the next interval, which leaves room for two
        misses. A process that dies stops renewing, and its run is taken over once the lease runs
        out; a read that never ends meets the run's deadline."""
        task = asyncio.ensure_future(work)
        try:
            while not await self._done_before_renewal(task):
                await self._renew()
            return task.result()
        finally:
            if not task.done():
                task.cancel()
                await asyncio.wait({task})  # a cancel of this task itself still propagates
            if not task.cancelled():
                task.exception()  # retrieved: raised above, or superseded by what is propagating

    async def posting(self, message_count: int) -> None:
        await self._store.start_posting(self._run.id, self._terms.lease(), message_count=message_count)
        self._run = replace(self._run, status="posting")

    async def failed(self, error: str) -> None:
        await self._close("failed", error=error)

    async def finished(
        self, status: OutcomeStatus, *, done: bool, cost_ticks: int = 0, error: str = ""
    ) -> None:
        await self._close(status, period_done=done, cost_ticks=cost_ticks, error=error or None)

    async def _close(self, end: RunStatus, **values: Any) -> None:
        await self._store.close(self._run, end, owner=self._terms.owner, now=self._terms.clock(), **values)

    async def _done_before_renewal(self, task: asyncio.Future[Any]) -> bool:
        pause = asyncio.ensure_future(self._terms.sleep(self._terms.renew_every))
        try:
            await asyncio.wait({task, pause}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            pause.cancel()
        return task.done()

    async def _renew(self) -> None:
        try:
            await self._store.renew(self._run.id, self._terms.lease())
        except (SQLAlchemyError, OSError) as exc:
            log.warning("digest run %s: lease not renewed this time: %s", self._run.id, type(exc).__name__)


class Runs:
    """The runs of every workspace's digest slots, claimed slot by slot in the database."""

    def __init__(
        self, *, store: DigestStore, maker: DigestMaker, platforms: Mapping[str, Platform], terms: LeaseTerms
    ) -> None:
        self._store = store
        self._maker = maker
        self._platforms = platforms
        self._terms = terms

    async def tick(self) -> int:
        """Take over abandoned runs, then claim and run every due slot; returns how many ran."""
        ran = 0
        now = self._terms.clock()
        for stale in await self._store.claim_stale(self._platforms, lease=self._terms.lease(), now=now):
            ran += await self._guarded(f"digest {stale.digest_id} (recovered run)", self._recover(stale))
        for digest in await self._store.due(self._platforms, self._terms.clock()):
            ran += await self._guarded(f"digest {digest.id}", self._claim_and_run(digest))
        return ran

    async def next_due(self) -> datetime | None:
        """When the next slot, or the lease of a run left unfinished, comes due."""
        return await self._store.next_due(self._platforms)

    async def _guarded(self, label: str, unit: Awaitable[int]) -> int:
        try:
            return await unit
        except LeaseLost:
            log.info("%s: run taken over by another instance", label)
        # The job loop's one catch-all, around one unit of work (one slot): log it with its
        # traceback and go on with the other slots; a `running` run is retried after its lease.
        except Exception:
            log.exception("%s: run failed", label)
        return 0

    async def _claim_and_run(self, digest: DigestInfo) -> int:
        now = self._terms.clock()
        slot = digest.schedule.latest_until(digest.next_run_at, now)  # missed slots after downtime run once
        following = digest.schedule.next_after(slot)
        claimed = await self._store.claim_slot(
            digest, slot=slot, following=following, lease=self._terms.lease(), now=now
        )
        if claimed is None:
            return 0
        run, fresh = claimed
        await self._run_slot(fresh, ScheduledRun(self._store, self._terms, run))
        return 1

    async def _recover(self, stale: SlotRun) -> int:
        """A dead instance's run: a `running` one is run again, a `posting` one closed as failed."""
        digest = await self._store.digest(stale.digest_id)
        if digest is None or digest.place.platform not in self._platforms:
            return 0  # removed meanwhile (the cascade takes the run), or not ours to post
        run = ScheduledRun(self._store, self._terms, stale)
        if stale.status == "posting":
            # It may have been posted: never post twice. Its period counts as done.
            await run.finished("failed", done=True, error="interrupted while posting")
            log.warning(
                "digest %d slot %s: interrupted while posting; not posted again", digest.id, stale.slot
            )
            return 0
        await self._run_slot(digest, run)
        return 1

    async def _run_slot(self, digest: DigestInfo, run: ScheduledRun) -> None:
        slot = run.slot
        since = digest.since or digest.schedule.previous_before(slot) or slot - timedelta(days=1)
        if since >= slot:
            await run.failed("superseded by a later run")
            return
        job = DigestJob(
            source=Place(digest.place.platform, digest.place.workspace, digest.channel),
            target=digest.place,
            since=since,
            until=slot,
            timezone=digest.schedule.timezone,
            post_when_empty=digest.post_when_empty,
            charge_key=f"digest:{digest.id}:{slot.isoformat()}",
        )
        await self._maker.make(job, run)
