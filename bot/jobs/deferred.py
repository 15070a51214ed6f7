"""Deferrals: a deferred xAI completion from submit through poll and store to a delivery of at most
once per part, then accounting; each step a write of the repository (the state machine is drawn in
bot.jobs)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime, timedelta

from bot import store
from bot.answer_lines import log_answer
from bot.errors import DeferredGone, GrokError, PlatformError, PlatformRateLimited, PlatformUncertain
from bot.grok import ChatRequest, Completion, GrokClient, Usage
from bot.jobs.claims import LeaseLost
from bot.jobs.repository import DeferredRequests
from bot.jobs.state import EXPIRY, Envelope, Gone, Status, Work
from bot.jobs.wakeups import Bell
from bot.platform import Place, Platform
from bot.quotas import Charge, Quotas, Reservation, Subject
from bot.streaming import split_message

log = logging.getLogger(__name__)

MAX_DELIVERY_FAILURES = 5
INTERRUPTED_NOTE = (
    "⚠️ Delivering this answer was interrupted by a restart, so a part of it may be missing above. "
    "The whole answer is kept in this conversation: reply to continue from it, or ask again."
)
EMPTY_ANSWER = "(Grok finished without any answer text.)"
GONE_NOTICE: dict[str, str] = {
    Gone.EXPIRED: "⌛ Your deferred question was not answered within 24 hours, so its result expired.",
    Gone.LOST: "⌛ The result of your deferred question was lost before it could be collected.",
}
GONE_TAIL = " Nothing was charged for it; please ask again."


class Deferrals:
    """Deferred xAI completions from submit to delivery, claimed row by row through the repository.
    `added` rings on each submit (the poller listens)."""

    def __init__(
        self,
        requests: DeferredRequests,
        *,
        grok: GrokClient,
        quotas: Quotas,
        platforms: Mapping[str, Platform],
        clock: Callable[[], datetime],
        first_poll: timedelta = timedelta(seconds=2),
        max_poll: timedelta = timedelta(seconds=30),
        early: timedelta = timedelta(seconds=0.5),
    ) -> None:
        self._requests = requests
        self._grok = grok
        self._quotas = quotas
        self._platforms = platforms
        self._clock = clock
        self._first_poll = first_poll
        self._max_poll = max_poll
        # Rows due this much ahead are taken now: timer ticks jitter by milliseconds, and a row
        # due a few ms after a tick would otherwise wait for a whole further tick.
        self._early = early
        self.added = Bell()

    async def submit(
        self,
        *,
        place: Place,
        user_id: str,
        request: ChatRequest,
        reservation: Reservation | None,
        conversation_id: int | None,
    ) -> str:
        """Start a deferred completion and remember where to deliver it; returns xAI's request id.

        The caller keeps the reservation if this raises (nothing was stored)."""
        request_id = await self._grok.start_deferred(request)
        now = self._clock()
        await self._requests.add(
            request_id,
            place=place,
            user_id=user_id,
            model=request.model,
            conversation_id=conversation_id,
            reservation_id=None if reservation is None else reservation.id,
            due=now + self._first_poll,
            expires=now + EXPIRY,
        )
        self.added.ring()
        log.info("deferred submitted xai_request_id=%s place=%s", request_id, place.key)
        return request_id

    async def poll_due(self, *, limit: int = 20) -> int:
        """Claim up to `limit` due rows and move each as far as it goes; returns how many were claimed."""
        claimed = await self._requests.claim(self._platforms, due_by=self._clock() + self._early, limit=limit)
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

    async def next_due(self) -> datetime | None:
        """When to poll next: when the first free row is due (less the early margin), or when the
        first lease held runs out (its instance may be dead); None while no request is open."""
        free_at, lease_end = await self._requests.next_due(self._platforms)
        moments = [moment for moment in (free_at and free_at - self._early, lease_end) if moment is not None]
        return min(moments, default=None)

    async def pending_count(self) -> int:
        """Rows not yet delivered or closed (for the deferred_pending gauge and the status view)."""
        return await self._requests.open_count()

    # -- the steps ------------------------------------------------------------------------------

    async def _advance(self, work: Work) -> None:
        if work.status is Status.PENDING:
            work = await self._poll(work)
        if work.status is Status.FETCHED:
            work = await self._prepare(work)
        elif work.status is Status.GONE:
            work = await self._give_up(work)
        if work.status is Status.DELIVERING:
            await self._deliver(work)

    async def _poll(self, work: Work) -> Work:
        """One GET: the row moves on (fetched or gone), or stays pending until its next poll."""
        if self._clock() >= work.expires_at:
            return await self._requests.move(work, Status.GONE, error=Gone.EXPIRED)
        try:
            completion = await self._grok.fetch_deferred(work.xai_request_id)
        except DeferredGone:
            return await self._requests.move(work, Status.GONE, error=Gone.LOST)
        except GrokError as exc:
            # Transient or not, the request may still finish: keep polling until it expires.
            log.warning("deferred %s: poll failed: %s", work.xai_request_id, exc)
            completion = None
        if completion is None:
            wait = min(self._max_poll, self._first_poll * 2 ** min(work.attempts, 16))
            # From the claim, not from now, so that the tick `wait` later finds it due.
            return await self._requests.poll_later(work, at=work.claimed_at + wait)
        return await self._store(work, completion)

    async def _store(self, work: Work, completion: Completion) -> Work:
        # Stored whether or not our lease is still ours: the result exists only here now. A
        # successor that polled meanwhile got a 404 and finds the row no longer pending.
        try:
            fetched = await self._requests.store_result(work, completion)
        except LeaseLost:
            log.error("deferred %s: fetched but the row moved on; result dropped", work.xai_request_id)
            raise
        log.info("deferred %s: result stored", work.xai_request_id)
        return fetched

    async def _prepare(self, work: Work) -> Work:
        """Fix the parts to post. Nothing is charged or remembered before they are posted."""
        answer = work.envelope.completion
        limit = self._platforms[work.place.platform].capabilities.max_message_length
        parts = split_message((answer.text if answer is not None else "") or EMPTY_ANSWER, limit)
        return await self._requests.move(work, Status.DELIVERING, envelope=work.envelope.to_post(parts))

    async def _give_up(self, work: Work) -> Work:
        """Expired or lost: give the reservation back, then tell the user (as a one-part delivery)."""
        reservation = _reservation(work)
        if reservation is not None:
            await self._quotas.release(reservation)
        notice = GONE_NOTICE.get(work.error or "", GONE_NOTICE[Gone.LOST]) + GONE_TAIL
        delivering = await self._requests.move(
            work, Status.DELIVERING, envelope=work.envelope.to_post([notice])
        )
        log.info("deferred %s: %s; user told", work.xai_request_id, work.error)
        return delivering

    async def _deliver(self, work: Work) -> None:
        """Post the parts not yet posted, each marked before and recorded after its post; then close."""
        platform = self._platforms[work.place.platform]
        if work.envelope.attempting is not None:
            work = await self._skip_interrupted(work)
        while (part := work.envelope.next_part) is not None:
            work = await self._requests.save(work, work.envelope.attempt())
            try:
                message_id = await platform.post_text(work.place, part)
            except PlatformError as exc:
                await self._delivery_failed(work, exc)
                return
            work = await self._requests.save(work, work.envelope.posted_as(message_id))
        await self._close(work)

    async def _skip_interrupted(self, work: Work) -> Work:
        """A predecessor started a part and left no id: it may be on the platform already, so it is
        not posted again, and an answer gets a note that a part may be missing."""
        # An expiry notice is not worth a second message.
        note = INTERRUPTED_NOTE if work.envelope.final is Status.DELIVERED else None
        work = await self._requests.save(work, work.envelope.interrupted(note))
        log.warning(
            "deferred %s: part %d may be lost (interrupted)", work.xai_request_id, len(work.envelope.posted)
        )
        return work

    async def _close(self, work: Work) -> None:
        """Every part is posted: account for an answer, link the messages, then close the row."""
        if work.envelope.completion is not None:
            await self._account(work, work.envelope.completion)
        await self._requests.link_answer(work, work.envelope.posted)
        done = await self._requests.finish(work)
        log.info(
            "deferred %s: %s in %d message(s)", work.xai_request_id, done.status, len(work.envelope.posted)
        )

    async def _account(self, work: Work, completion: Completion) -> None:
        """The answer is posted: record the assistant turn and charge the real cost (each
        idempotent, so a successor repeating this after a crash changes nothing)."""
        usage = completion.usage or Usage()
        cost = self._grok.prices.cost_ticks(completion.model or work.model, usage)
        turn = store.assistant_turn(completion, model=work.model, usage=usage, cost_ticks=cost)
        # The deferred request's id, by which the repository finds the turn already recorded.
        await self._requests.record_answer(work, replace(turn, xai_request_id=work.xai_request_id))
        charge = _charge(work, completion, usage, cost)
        reservation = _reservation(work)
        if reservation is not None:
            await self._quotas.settle(reservation, charge)
        else:
            await self._quotas.charge(_subject(work), charge)
        submitted = work.expires_at - EXPIRY  # a row expires EXPIRY after its submission
        log_answer(
            "deferred",
            work.place,
            user=work.user_id,
            model=charge.model,
            cost_ticks=cost,
            usage=usage,
            total_s=(self._clock() - submitted).total_seconds(),
            finish=completion.finish_reason,
        )

    async def _delivery_failed(self, work: Work, exc: PlatformError) -> None:
        """The post failed: retry later, or give up for good."""
        envelope = work.envelope.failed(uncertain=isinstance(exc, PlatformUncertain))
        if envelope.failures >= MAX_DELIVERY_FAILURES:
            await self._fail(work, envelope, exc)
            return
        wait = exc.retry_after if isinstance(exc, PlatformRateLimited) else 30.0 * envelope.failures
        log.warning("deferred %s: post failed (%s); retry in %.0f s", work.xai_request_id, exc, wait)
        await self._requests.post_later(work, envelope, at=self._clock() + timedelta(seconds=wait))

    async def _fail(self, work: Work, envelope: Envelope, exc: PlatformError) -> None:
        log.error("deferred %s: delivery failed for good: %s", work.xai_request_id, exc)
        reservation = _reservation(work)
        if reservation is not None and envelope.final is Status.DELIVERED:
            # Nobody saw the answer: it is neither charged nor kept in the conversation.
            await self._quotas.release(reservation)
        await self._requests.fail(work, envelope, error=str(exc))


def _subject(work: Work) -> Subject:
    return Subject(work.place.platform, work.place.workspace, work.user_id)


def _reservation(work: Work) -> Reservation | None:
    return (
        None if work.reservation_id is None else Reservation(id=work.reservation_id, subject=_subject(work))
    )


def _charge(work: Work, completion: Completion, usage: Usage, cost: int) -> Charge:
    return Charge(
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
