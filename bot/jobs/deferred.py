"""Deferrals: a deferred xAI completion from submit through poll and store to a delivery of at most
once per part, then accounting, each step claimed in the database (the state machine is drawn in
bot.jobs)."""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, func, or_, update
from sqlmodel import col, select

from bot import store
from bot.db import Sessions
from bot.errors import DeferredGone, GrokError, PlatformError, PlatformRateLimited, PlatformUncertain
from bot.grok import ChatRequest, Completion, GrokClient, Usage
from bot.jobs.claims import LeaseLost, claimable
from bot.platform import Place, Platform
from bot.quotas import Charge, Quotas, Reservation, Subject
from bot.streaming import split_message
from bot.tables import DeferredRequest, Turn

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
            except LeaseLost:
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
            raise LeaseLost
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
            await self._prepare(work)
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
            raise LeaseLost
        work.status = "fetched"
        log.info("deferred %s: result stored", work.xai_request_id)
        await self._step("fetched", work)
        return True

    async def _prepare(self, work: _Work) -> None:
        """Fix the parts to post. Nothing is charged or remembered before they are posted."""
        completion = _completion(work.state["completion"])
        limit = self._platforms[work.place.platform].capabilities.max_message_length
        work.state.update(
            parts=split_message(completion.text or EMPTY_ANSWER, limit), posted=[], final="delivered"
        )
        await self._move(work, to="delivering", result_json=json.dumps(work.state))

    async def _account(self, work: _Work) -> None:
        """The answer is posted: record the assistant turn and charge the real cost (each
        idempotent, so a successor repeating this after a crash changes nothing)."""
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
        if state["final"] == "delivered":
            await self._account(work)
            await self._step("accounted", work)
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
        """The post failed: retry later, or give up for good. A refused post did not happen; an
        uncertain one may have, so its attempt mark stays and it is never posted again."""
        failures = int(work.state.get("failures", 0)) + 1
        work.state["failures"] = failures
        if not isinstance(exc, PlatformUncertain):
            work.state["attempting"] = None
        if failures >= MAX_DELIVERY_FAILURES:
            log.error("deferred %s: delivery failed for good: %s", work.xai_request_id, exc)
            if work.reservation_id is not None and work.state.get("final") == "delivered":
                # Nobody saw the answer: it is neither charged nor kept in the conversation.
                subject = Subject(work.place.platform, work.place.workspace, work.user_id)
                await self._quotas.release(Reservation(id=work.reservation_id, subject=subject))
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
