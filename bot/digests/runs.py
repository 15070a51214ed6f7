"""Digest runs: due slots claimed in the database, abandoned runs taken over, and one run from the
channel history to its posts and its charge (the run states are drawn in bot.digests)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Update, update
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import col, select

from bot.db import Sessions, conflict_insert
from bot.digests.compose import Composed, compose
from bot.digests.recurrence import Schedule
from bot.errors import GrokError, PlatformError
from bot.grok import GrokClient
from bot.jobs.claims import LeaseLost, claimable
from bot.platform import ChannelMessage, Place, Platform
from bot.quotas import Charge, Quotas, Subject
from bot.streaming import split_message
from bot.tables import DigestRun, DigestSchedule
from bot.wording import describe

log = logging.getLogger(__name__)
T = TypeVar("T")
# Reading and summarising a channel may take this long: where the platform allows one history
# page a minute (Slack, for some apps: 15 messages a page), 2,000 messages take 134 minutes.
READ_DEADLINE_S = 3 * 3600.0


@dataclass(frozen=True)
class DigestOutcome:
    status: str  # posted | empty | failed
    message_count: int
    cost_ticks: int
    message_ids: tuple[str, ...] = ()
    error: str = ""


class Runs:
    """The runs of every workspace's digest slots, claimed slot by slot in the database."""

    def __init__(
        self,
        *,
        sessions: Sessions,
        grok: GrokClient,
        quotas: Quotas,
        platforms: Mapping[str, Platform],
        clock: Callable[[], datetime],
        instance_id: str,
        model: str,
        lease: timedelta,
        chunk_chars: int,
        renew_every: float | None = None,
        deadline: float = READ_DEADLINE_S,
    ) -> None:
        self._sessions = sessions
        self._grok = grok
        self._quotas = quotas
        self._platforms = platforms
        self._clock = clock
        self._me = instance_id[:64]
        self._model = model
        self._lease = lease
        self._renew_every = lease.total_seconds() / 3 if renew_every is None else renew_every
        self._deadline = deadline
        self._chunk_chars = chunk_chars

    # -- ticks and claims -------------------------------------------------------------------

    async def tick(self) -> int:
        """Take over abandoned runs, then claim and run every due slot; returns how many ran."""
        ran = 0
        for run in await self._claim_stale():
            ran += await self._guarded(f"digest {run[1]} (recovered run)", self._recover(run))
        now = self._clock()
        async with self._sessions() as session:
            due = await session.exec(
                select(DigestSchedule)
                .where(
                    col(DigestSchedule.enabled),
                    col(DigestSchedule.platform).in_(list(self._platforms)),
                    col(DigestSchedule.next_run_at) <= now,
                )
                .order_by(col(DigestSchedule.next_run_at))
                .limit(100)
            )
            rows = due.all()
        for row in rows:
            ran += await self._guarded(f"digest {row.id}", self._claim_and_run(row))
        return ran

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

    async def _claim_and_run(self, row: DigestSchedule) -> int:
        assert row.id is not None
        now = self._clock()
        schedule = Schedule(row.cron_expr, row.timezone)
        slot = schedule.latest_until(row.next_run_at, now)  # missed slots after downtime run once
        following = schedule.next_after(slot)
        async with self._sessions.begin() as session:
            # Compare-and-set: exactly one instance moves next_run_at from the value it read.
            won = await session.exec(
                update(DigestSchedule)
                .where(col(DigestSchedule.id) == row.id, col(DigestSchedule.next_run_at) == row.next_run_at)
                .values(next_run_at=following or row.next_run_at, enabled=following is not None)
                .execution_options(synchronize_session=False)
            )
            if won.rowcount != 1:
                return 0
            # UNIQUE(digest_id, slot) is the backstop: a slot that already has a run is not rerun.
            inserted = await session.exec(
                conflict_insert(session, DigestRun)
                .values(
                    digest_id=row.id,
                    slot=slot,
                    status="running",
                    lease_owner=self._me,
                    lease_until=now + self._lease,
                    started_at=now,
                )
                .on_conflict_do_nothing(index_elements=["digest_id", "slot"])
                .returning(col(DigestRun.id))
            )
            run_id = inserted.scalar_one_or_none()
            # Read again after winning: the period starts where the previous run really ended.
            fresh = await session.get(DigestSchedule, row.id, populate_existing=True)
        if run_id is None or fresh is None:
            return 0
        await self._run_slot(fresh, run_id, slot)
        return 1

    async def _claim_stale(self) -> list[tuple[int, int, datetime, str]]:
        """Lease the runs whose instance died (their lease expired)."""
        now = self._clock()
        ours = select(col(DigestSchedule.id)).where(col(DigestSchedule.platform).in_(list(self._platforms)))
        stale: list[ColumnElement[bool]] = [
            col(DigestRun.status).in_(["running", "posting"]),
            col(DigestRun.lease_until) < now,
            col(DigestRun.digest_id).in_(ours),  # another instance may post to other platforms
        ]
        async with self._sessions.begin() as session:
            pick = select(col(DigestRun.id)).where(*stale).order_by(col(DigestRun.lease_until)).limit(20)
            claimed = await session.exec(
                update(DigestRun)
                .where(col(DigestRun.id).in_(claimable(session, pick)), *stale)
                .values(lease_owner=self._me, lease_until=now + self._lease)
                .returning(
                    col(DigestRun.id), col(DigestRun.digest_id), col(DigestRun.slot), col(DigestRun.status)
                )
                .execution_options(synchronize_session=False)
            )
            return [(r.id, r.digest_id, r.slot, r.status) for r in claimed.all()]

    async def _recover(self, run: tuple[int, int, datetime, str]) -> int:
        """A dead instance's run: a `running` one is run again, a `posting` one closed as failed."""
        run_id, digest_id, slot, status = run
        async with self._sessions() as session:
            row = await session.get(DigestSchedule, digest_id)
        if row is None or row.platform not in self._platforms:
            return 0  # removed meanwhile (the cascade takes the run), or not ours to post
        if status == "posting":
            # It may have been posted: never post twice. Its period counts as done.
            await self._finish(
                run_id, "posting", "failed", row, slot, advance=True, error="interrupted while posting"
            )
            log.warning("digest %d slot %s: interrupted while posting; not posted again", digest_id, slot)
            return 0
        await self._run_slot(row, run_id, slot)
        return 1

    async def _run_slot(self, row: DigestSchedule, run_id: int, slot: datetime) -> None:
        schedule = Schedule(row.cron_expr, row.timezone)
        since = row.last_run_at or schedule.previous_before(slot) or slot - timedelta(days=1)
        if since >= slot:
            await self._finish(
                run_id, "running", "failed", row, slot, advance=False, error="superseded by a later run"
            )
            return
        await self.run(
            source=Place(row.platform, row.workspace, row.channel),
            target=Place(row.platform, row.workspace, row.post_channel),
            since=since,
            until=slot,
            timezone=row.timezone,
            post_when_empty=row.post_when_empty,
            charge_key=f"digest:{row.id}:{slot.isoformat()}",
            run=(run_id, row),
        )

    # -- one run ----------------------------------------------------------------------------

    async def run(
        self,
        *,
        source: Place,
        target: Place,
        since: datetime,
        until: datetime,
        timezone: str,
        post_when_empty: bool,
        charge_key: str,
        run: tuple[int, DigestSchedule] | None,
    ) -> DigestOutcome:
        """Read `source` from `since` to `until`, post its digest in `target` and charge for it.

        `run` is the claimed run and its schedule, None for a digest made now."""
        platform = self._platforms[target.platform]

        async def read_and_compose() -> tuple[list[ChannelMessage], Composed]:
            history = await platform.channel_history(source, since=since, until=until)
            messages = [m for m in history if not m.author.is_bot and m.text.strip()]
            composed = await compose(
                self._grok,
                messages,
                source=source,
                target=target,
                since=since,
                until=until,
                timezone=timezone,
                model=self._model,
                chunk_chars=self._chunk_chars,
            )
            return messages, composed

        try:
            async with asyncio.timeout(self._deadline) as deadline:
                if run is None:
                    messages, composed = await read_and_compose()
                else:
                    messages, composed = await self._leased(run[0], read_and_compose())
        except TimeoutError:
            if not deadline.expired():
                raise
            seconds = self._deadline
            took = f"{seconds / 3600:g} h" if seconds >= 3600 else f"{seconds:g} s"
            exc = PlatformError(f"reading and summarising the channel took longer than {took}")
            return await self._failed(platform, target, run, until, exc)
        except (GrokError, PlatformError) as exc:
            return await self._failed(platform, target, run, until, exc)
        status = "posted" if messages else "empty"
        posted: tuple[str, ...] = ()
        if run is not None:
            await self._move_run(run[0], "running", "posting", message_count=len(messages))
        if messages or post_when_empty:
            limit = platform.capabilities.max_message_length
            posted_ids: list[str] = []
            try:
                for part in split_message(composed.text, limit):
                    posted_ids.append(await platform.post_text(target, part))
            except PlatformError as exc:
                # Refused: not posted (nothing charged). A digest half out counts as done.
                log.warning("digest of %s not posted: %s", source.key, exc)
                if run is not None:
                    await self._finish(
                        run[0],
                        "posting",
                        "failed",
                        run[1],
                        until,
                        advance=bool(posted_ids),
                        error=str(exc)[:2000],
                    )
                return DigestOutcome("failed", len(messages), 0, tuple(posted_ids), error=str(exc))
            posted = tuple(posted_ids)
        if composed.cost_ticks or composed.usage.total_tokens:
            usage = composed.usage
            await self._quotas.charge(
                Subject(target.platform, target.workspace, ""),
                Charge(
                    kind="digest",
                    model=composed.model[:64],
                    cost_ticks=composed.cost_ticks,
                    idempotency_key=charge_key[:160],
                    prompt_tokens=usage.prompt_tokens,
                    completion_tokens=usage.completion_tokens,
                    reasoning_tokens=usage.reasoning_tokens,
                    cached_tokens=usage.cached_tokens,
                    conversation_key=f"digest:{source.key}"[:300],
                ),
            )
        if run is not None:
            await self._finish(
                run[0], "posting", status, run[1], until, advance=True, cost_ticks=composed.cost_ticks
            )
        log.info(
            "digest of %s: %s, %d messages, %d ticks", source.key, status, len(messages), composed.cost_ticks
        )
        return DigestOutcome(status, len(messages), composed.cost_ticks, posted)

    async def _failed(
        self,
        platform: Platform,
        target: Place,
        run: tuple[int, DigestSchedule] | None,
        until: datetime,
        exc: GrokError | PlatformError,
    ) -> DigestOutcome:
        """Not charged: the workspace got no digest. The period stays open for the next run."""
        # Users read the engine's wording of errors; the raw text goes to the log.
        reason = describe(exc, zone=UTC, now=self._clock()).rstrip(".")
        log.warning("digest run failed: %s", exc)
        if run is not None:
            await self._move_run(
                run[0], "running", "failed", error=str(exc)[:2000], finished_at=self._clock()
            )
        notice = f"⚠️ The digest could not be made. {reason}. " + (
            "These messages will be included in the next digest." if run is not None else "Try again later."
        )
        try:
            await platform.post_text(target, notice)
        except PlatformError as post_error:
            log.warning("digest failure notice not posted: %s", post_error)
        return DigestOutcome("failed", 0, 0, error=str(exc))

    async def _leased(self, run_id: int, work: Coroutine[Any, Any, T]) -> T:
        """Run `work` while renewing run `run_id`'s lease every third of it: reading a busy
        channel's history can take minutes (Slack allows some apps one page a minute). A lost
        lease cancels `work` and raises LeaseLost; a renewal that fails for another reason (the
        database busy or unreachable for a moment) is tried again at the next interval, which
        leaves room for two misses. A process that dies stops renewing, and its run is taken over
        once the lease runs out; a read that never ends meets the run's deadline."""
        task = asyncio.ensure_future(work)
        try:
            while True:
                done, _ = await asyncio.wait({task}, timeout=self._renew_every)
                if done:
                    return task.result()
                try:
                    await self._move_run(run_id, "running", "running")
                except (SQLAlchemyError, OSError) as exc:
                    log.warning("digest run %s: lease not renewed this time: %s", run_id, type(exc).__name__)
        finally:
            if not task.done():
                task.cancel()
                await asyncio.wait({task})  # a cancel of this task itself still propagates
            if not task.cancelled():
                task.exception()  # retrieved: raised above, or superseded by what is propagating

    async def _move_run(self, run_id: int, start: str, end: str, **values: Any) -> None:
        now = self._clock()
        async with self._sessions.begin() as session:
            moved = await session.exec(
                _leased_run(run_id, start, self._me).values(
                    status=end, lease_until=now + self._lease, **values
                )
            )
        if moved.rowcount != 1:
            raise LeaseLost

    async def _finish(
        self,
        run_id: int,
        start: str,
        end: str,
        row: DigestSchedule,
        until: datetime,
        *,
        advance: bool,
        **values: Any,
    ) -> None:
        """Close a run; `advance`: its period is done (the next run starts at `until`)."""
        now = self._clock()
        async with self._sessions.begin() as session:
            moved = await session.exec(
                _leased_run(run_id, start, self._me).values(
                    status=end, lease_owner=None, lease_until=None, finished_at=now, **values
                )
            )
            if moved.rowcount != 1:
                raise LeaseLost
            if advance:
                await session.exec(
                    update(DigestSchedule)
                    .where(col(DigestSchedule.id) == row.id)
                    .where(
                        (col(DigestSchedule.last_run_at).is_(None))
                        | (col(DigestSchedule.last_run_at) < until)
                    )
                    .values(last_run_at=until)
                    .execution_options(synchronize_session=False)
                )


def _leased_run(run_id: int, start: str, owner: str) -> Update:
    """UPDATE of run `run_id` in state `start` while `owner` holds its lease (else no row moves)."""
    return (
        update(DigestRun)
        .where(
            col(DigestRun.id) == run_id, col(DigestRun.status) == start, col(DigestRun.lease_owner) == owner
        )
        .execution_options(synchronize_session=False)
    )
