"""Deferred completions (submit, poll, store, deliver once) and the in-process timer that wakes the
database claimers of deferred requests and digest slots, with a heartbeat per tick.

State machine of a deferred_request row; every arrow is one conditional UPDATE on (id, status,
lease_owner) that also renews the lease, so a step whose lease was taken over matches no row:

    pending --202/error--> pending (next_poll_at backs off 2 s -> 30 s, lease dropped)
    pending --200--> fetched  (the completion is stored BEFORE anything is posted: xAI serves it once)
    pending --404 or past expires_at--> gone
    fetched --turn recorded, quota settled (both idempotent)--> delivering (the parts to post fixed)
    gone    --reservation released (idempotent)--> delivering (one part: the "expired" notice)
    delivering --each part: mark "attempting i", post, record its id--> delivered | expired

Delivery is at most once per part. Before part i is posted the row says "attempting i"; after, it
holds the message id. A successor that finds an attempt without an id cannot know whether the post
went out, so it does not repeat it: it posts the remaining parts plus a short note that the answer
may be incomplete. That is the one unavoidable window: a crash while the platform call of one part
is in flight (or between its return and the next commit) may lose that part, never duplicates it.
Two windows belong to others: a crash between xAI's 200 and our commit loses the result (xAI
serves it once), and an adapter that raises PlatformError after the platform did accept a post
makes that part post twice on retry.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy import ColumnElement, func, or_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

from bot import store
from bot.db import Sessions
from bot.errors import DeferredGone, GrokError, PlatformError, PlatformRateLimited
from bot.grok import ChatRequest, Completion, GrokClient, Usage
from bot.platform import Place, Platform
from bot.quotas import Charge, Quotas, Reservation, Subject
from bot.streaming import split_message
from bot.tables import DeferredRequest, Heartbeat, Turn

log = logging.getLogger(__name__)

EXPIRY = timedelta(hours=24)  # xAI keeps a deferred result this long
OPEN = ("pending", "fetched", "gone", "delivering")
MAX_DELIVERY_FAILURES = 5
INTERRUPTED_NOTE = (
    "⚠️ Delivering this answer was interrupted by a restart, so a part of it may be missing above. "
    "The whole answer is kept in this conversation: reply to continue from it, or ask again."
)
EMPTY_ANSWER = "(Grok finished without any answer text.)"
GONE_NOTICE = {
    "expired": "⌛ Your deferred question was not answered within 24 hours, so its result expired.",
    "lost": "⌛ The result of your deferred question was lost before it could be collected.",
}
GONE_TAIL = " Nothing was charged for it; please ask again."


class _LeaseLost(Exception):
    """A step's conditional UPDATE matched no row: another instance owns the row now, or it moved on."""


@dataclass
class _Work:
    """A claimed deferred_request row, as plain values (rows never leave this module)."""

    id: int
    xai_request_id: str
    place: Place
    user_id: str
    conversation_id: int | None
    model: str
    reservation_id: int | None
    status: str
    attempts: int
    expires_at: datetime
    error: str | None
    claimed_at: datetime
    state: dict[str, Any] = field(default_factory=dict)  # the result_json envelope


class Deferrals:
    """Deferred xAI completions from submit to delivery, claimed row by row through the database."""

    def __init__(
        self,
        *,
        sessions: Sessions,
        grok: GrokClient,
        quotas: Quotas,
        platforms: Mapping[str, Platform],
        clock: Callable[[], datetime],
        instance_id: str,
        lease: timedelta = timedelta(seconds=60),
        first_poll: timedelta = timedelta(seconds=2),
        max_poll: timedelta = timedelta(seconds=30),
        early: timedelta = timedelta(seconds=0.5),
    ) -> None:
        self._sessions = sessions
        self._grok = grok
        self._quotas = quotas
        self._platforms = platforms
        self._clock = clock
        self._me = instance_id[:64]
        self._lease = lease
        self._first_poll = first_poll
        self._max_poll = max_poll
        # Rows due this much ahead are taken now: timer ticks jitter by milliseconds, and a row
        # due a few ms after a tick would otherwise wait for a whole further tick.
        self._early = early

    async def submit(
        self,
        *,
        place: Place,
        user_id: str,
        request: ChatRequest,
        reservation: Reservation | None,
        conversation_id: int | None,
        reply_to: str = "",
    ) -> str:
        """Start a deferred completion and remember where to deliver it; returns xAI's request id.

        The caller keeps the reservation if this raises (nothing was stored)."""
        request_id = await self._grok.start_deferred(request)
        now = self._clock()
        async with self._sessions.begin() as session:
            session.add(
                DeferredRequest(
                    xai_request_id=request_id,
                    platform=place.platform,
                    workspace=place.workspace,
                    channel=place.channel,
                    thread=place.thread,
                    user_id=user_id,
                    conversation_id=conversation_id,
                    reply_to=reply_to,
                    model=request.model,
                    reservation_id=None if reservation is None else reservation.id,
                    next_poll_at=now + self._first_poll,
                    created_at=now,
                    expires_at=now + EXPIRY,
                )
            )
        log.info("deferred submitted xai_request_id=%s place=%s", request_id, place.key)
        return request_id

    async def poll_due(self, *, limit: int = 20) -> int:
        """Claim up to `limit` due rows and move each as far as it goes; returns how many were claimed."""
        claimed = await self._claim(limit)
        for work in claimed:
            try:
                await self._advance(work)
            except _LeaseLost:
                log.info("deferred %s: lease lost to another instance; leaving it", work.xai_request_id)
            # The job loop's one catch-all, around one unit of work (one row): log it with its
            # traceback and go on with the other rows; the row's lease expires and it is retried.
            except Exception:
                log.exception("deferred %s: step failed", work.xai_request_id)
        return len(claimed)

    async def pending_count(self) -> int:
        """Rows not yet delivered or closed (for the deferred_pending gauge and the status view)."""
        async with self._sessions() as session:
            result = await session.exec(
                select(func.count()).select_from(DeferredRequest).where(col(DeferredRequest.status).in_(OPEN))
            )
            return int(result.one())

    # -- claiming ------------------------------------------------------------------------------

    async def _claim(self, limit: int) -> list[_Work]:
        now = self._clock()
        due: list[ColumnElement[bool]] = [
            col(DeferredRequest.status).in_(OPEN),
            col(DeferredRequest.platform).in_(list(self._platforms)),
            col(DeferredRequest.next_poll_at) <= now + self._early,
            or_(col(DeferredRequest.lease_until).is_(None), col(DeferredRequest.lease_until) < now),
        ]
        async with self._sessions.begin() as session:
            pick = select(col(DeferredRequest.id)).where(*due).order_by(col(DeferredRequest.next_poll_at))
            # The outer WHERE repeats the condition: the claim is a conditional UPDATE either way.
            claim = (
                update(DeferredRequest)
                .where(col(DeferredRequest.id).in_(claimable(session, pick.limit(limit))), *due)
                .values(lease_owner=self._me, lease_until=now + self._lease)
                .returning(DeferredRequest)
                .execution_options(synchronize_session=False)
            )
            rows = (await session.exec(claim)).scalars().all()
        return [_work(row, now) for row in sorted(rows, key=lambda r: r.next_poll_at)]

    async def _move(self, work: _Work, *, to: str, release: bool = False, **values: Any) -> None:
        """One step: from work.status to `to`, only while this instance holds the row."""
        now = self._clock()
        lease = {"lease_owner": None, "lease_until": None} if release else {"lease_until": now + self._lease}
        async with self._sessions.begin() as session:
            result = await session.exec(
                update(DeferredRequest)
                .where(
                    col(DeferredRequest.id) == work.id,
                    col(DeferredRequest.status) == work.status,
                    col(DeferredRequest.lease_owner) == self._me,
                )
                .values(status=to, **lease, **values)
                .execution_options(synchronize_session=False)
            )
        if result.rowcount != 1:
            raise _LeaseLost
        work.status = to

    async def _save(self, work: _Work) -> None:
        """Commit the delivery progress (the envelope) without changing the status."""
        await self._move(work, to=work.status, result_json=json.dumps(work.state))

    async def _step(self, name: str, work: _Work) -> None:
        """Called between steps; a seam for tests that simulate a crash at each point."""

    # -- the steps ------------------------------------------------------------------------------

    async def _advance(self, work: _Work) -> None:
        await self._step("claimed", work)
        if work.status == "pending" and not await self._poll(work):
            return
        if work.status == "fetched":
            await self._account(work)
        elif work.status == "gone":
            await self._give_up(work)
        if work.status == "delivering":
            await self._deliver(work)

    async def _poll(self, work: _Work) -> bool:
        """One GET; True when the row moved on (fetched or gone), False when it waits."""
        now = self._clock()
        if now >= work.expires_at:
            await self._move(work, to="gone", error="expired")
            work.error = "expired"
            return True
        try:
            completion = await self._grok.fetch_deferred(work.xai_request_id)
        except DeferredGone:
            await self._move(work, to="gone", error="lost")
            work.error = "lost"
            return True
        except GrokError as exc:
            # Transient or not, the request may still finish: keep polling until it expires.
            log.warning("deferred %s: poll failed: %s", work.xai_request_id, exc)
            completion = None
        if completion is None:
            wait = min(self._max_poll, self._first_poll * 2 ** min(work.attempts, 16))
            # From the claim, not from now, so that the tick `wait` later finds it due.
            await self._move(
                work,
                to="pending",
                release=True,
                attempts=work.attempts + 1,
                next_poll_at=work.claimed_at + wait,
            )
            return False
        work.state = {"completion": dataclasses.asdict(completion)}
        # Stored whether or not our lease is still ours: the result exists only here now. A
        # successor that polled meanwhile got a 404 and finds the row no longer `pending`.
        async with self._sessions.begin() as session:
            stored = await session.exec(
                update(DeferredRequest)
                .where(col(DeferredRequest.id) == work.id, col(DeferredRequest.status) == "pending")
                .values(
                    status="fetched",
                    result_json=json.dumps(work.state),
                    lease_owner=self._me,
                    lease_until=self._clock() + self._lease,
                )
                .execution_options(synchronize_session=False)
            )
        if stored.rowcount != 1:
            log.error("deferred %s: fetched but the row moved on; result dropped", work.xai_request_id)
            raise _LeaseLost
        work.status = "fetched"
        log.info("deferred %s: result stored", work.xai_request_id)
        await self._step("fetched", work)
        return True

    async def _account(self, work: _Work) -> None:
        """Record the assistant turn and charge the real cost (each idempotent), then fix the parts."""
        completion = _completion(work.state["completion"])
        usage = completion.usage or Usage()
        cost = self._grok.prices.cost_ticks(completion.model or work.model, usage)
        now = self._clock()
        if work.conversation_id is not None and not await self._turn_recorded(work):
            record = replace(
                store.assistant_turn(completion, model=work.model, usage=usage, cost_ticks=cost),
                xai_request_id=work.xai_request_id,  # the deferred request's id, which _turn_recorded finds
            )
            await store.add_turns(self._sessions, work.conversation_id, [record], now=now)
        charge = Charge(
            kind="deferred",
            model=(completion.model or work.model)[:64],
            cost_ticks=cost,
            idempotency_key=f"deferred:{work.xai_request_id}"[:160],
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            reasoning_tokens=usage.reasoning_tokens,
            cached_tokens=usage.cached_tokens,
            xai_request_id=work.xai_request_id[:128],
            conversation_key=work.place.key[:300],
        )
        subject = Subject(work.place.platform, work.place.workspace, work.user_id)
        if work.reservation_id is not None:
            await self._quotas.settle(Reservation(id=work.reservation_id, subject=subject), charge)
        else:
            await self._quotas.charge(subject, charge)
        await self._step("accounted", work)
        limit = self._platforms[work.place.platform].capabilities.max_message_length
        work.state.update(
            parts=split_message(completion.text or EMPTY_ANSWER, limit), posted=[], final="delivered"
        )
        await self._move(work, to="delivering", result_json=json.dumps(work.state))

    async def _turn_recorded(self, work: _Work) -> bool:
        async with self._sessions() as session:
            found = await session.exec(
                select(col(Turn.id))
                .where(
                    col(Turn.conversation_id) == work.conversation_id,
                    col(Turn.xai_request_id) == work.xai_request_id,
                    col(Turn.role) == "assistant",
                )
                .limit(1)
            )
            return found.first() is not None

    async def _give_up(self, work: _Work) -> None:
        """Expired or lost: give the reservation back, then tell the user (as a one-part delivery)."""
        if work.reservation_id is not None:
            subject = Subject(work.place.platform, work.place.workspace, work.user_id)
            await self._quotas.release(Reservation(id=work.reservation_id, subject=subject))
        notice = GONE_NOTICE.get(work.error or "", GONE_NOTICE["lost"]) + GONE_TAIL
        work.state.update(parts=[notice], posted=[], final="expired")
        await self._move(work, to="delivering", result_json=json.dumps(work.state))
        log.info("deferred %s: %s; user told", work.xai_request_id, work.error)

    async def _deliver(self, work: _Work) -> None:
        """Post the parts not yet posted, each marked before and recorded after its post."""
        platform = self._platforms[work.place.platform]
        state = work.state
        parts: list[str] = state["parts"]
        posted: list[str] = state["posted"]
        if state.get("attempting") is not None:
            # A predecessor started this part and left no id: it may be on the platform already.
            posted.append("")
            if state["final"] == "delivered":  # an expiry notice is not worth a second message
                parts.append(INTERRUPTED_NOTE)
            state["attempting"] = None
            await self._save(work)
            log.warning("deferred %s: part %d may be lost (interrupted)", work.xai_request_id, len(posted))
        while len(posted) < len(parts):
            state["attempting"] = len(posted)
            await self._save(work)
            await self._step("attempting", work)
            try:
                message_id = await platform.post_text(work.place, parts[len(posted)])
            except PlatformError as exc:
                await self._delivery_failed(work, exc)
                return
            await self._step("posted", work)
            posted.append(message_id)
            state["attempting"] = None
            await self._save(work)
        if work.conversation_id is not None:
            await store.link_messages(
                self._sessions,
                work.conversation_id,
                platform=work.place.platform,
                channel=work.place.channel,
                message_ids=posted,
                now=self._clock(),
            )
        await self._step("recorded", work)
        await self._move(work, to=state["final"], release=True, delivered_at=self._clock())
        log.info("deferred %s: %s in %d message(s)", work.xai_request_id, work.status, len(posted))

    async def _delivery_failed(self, work: _Work, exc: PlatformError) -> None:
        """The platform refused the post (so it did not happen): retry later, or give up for good."""
        failures = int(work.state.get("failures", 0)) + 1
        work.state.update(failures=failures, attempting=None)
        if failures >= MAX_DELIVERY_FAILURES:
            log.error("deferred %s: delivery failed for good: %s", work.xai_request_id, exc)
            await self._move(
                work, to="failed", release=True, result_json=json.dumps(work.state), error=str(exc)
            )
            return
        wait = exc.retry_after if isinstance(exc, PlatformRateLimited) else 30.0 * failures
        log.warning("deferred %s: post failed (%s); retry in %.0f s", work.xai_request_id, exc, wait)
        await self._move(
            work,
            to="delivering",
            release=True,
            result_json=json.dumps(work.state),
            next_poll_at=self._clock() + timedelta(seconds=wait),
        )


def claimable(
    session: AsyncSession, pick: SelectOfScalar[int | None]
) -> ColumnElement[Any] | SelectOfScalar[Any]:
    """The ids of `pick` for `UPDATE … WHERE id IN (…)`, locked where the database can lock them.

    PostgreSQL: a MATERIALIZED CTE with FOR UPDATE SKIP LOCKED, so concurrent claimers get
    disjoint rows. As a plain IN-subquery the planner may rescan it, and each rescan skips other
    rows, so one UPDATE could claim far more than LIMIT rows. SQLite has no row locks (SQLAlchemy
    drops the clause) and needs none: the whole UPDATE runs under its single writer lock.
    """
    if session.get_bind().dialect.name != "postgresql":
        return pick.scalar_subquery()
    picked = pick.with_for_update(skip_locked=True).cte("picked").prefix_with("MATERIALIZED")
    return select(picked.c[0])


def _work(row: DeferredRequest, claimed_at: datetime) -> _Work:
    assert row.id is not None
    return _Work(
        id=row.id,
        xai_request_id=row.xai_request_id,
        place=Place(row.platform, row.workspace, row.channel, row.thread),
        user_id=row.user_id,
        conversation_id=row.conversation_id,
        model=row.model,
        reservation_id=row.reservation_id,
        status=row.status,
        attempts=row.attempts,
        expires_at=row.expires_at,
        error=row.error,
        claimed_at=claimed_at,
        state=json.loads(row.result_json) if row.result_json else {},
    )


def _completion(data: Mapping[str, Any]) -> Completion:
    usage = data.get("usage")
    return Completion(**{**data, "usage": Usage(**usage) if usage is not None else None})


# -- the timer -------------------------------------------------------------------------------------


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
        module = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
        statement = module.insert(Heartbeat).values(instance=instance[:64], component=component, beat_at=now)
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
