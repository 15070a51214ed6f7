"""DeferredRequests: every SQL statement of the deferred requests (their rows, and their answers'
place in the conversation), taking and returning values; rows never leave this module."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Update, case, func, or_, update
from sqlmodel import col, select

from bot import store
from bot.db import Sessions
from bot.grok import Completion
from bot.jobs.claims import LeaseLost, claimable
from bot.jobs.notices import DEFERRED, announce
from bot.jobs.state import OPEN, Envelope, Status, Work
from bot.platform import Place
from bot.store import HistoryMessage
from bot.tables import DeferredRequest, Turn


class DeferredRequests:
    """The deferred_request rows of one instance's claims. Every change after the claim is one
    conditional UPDATE on (id, status, lease_owner): a step whose lease was taken over, or whose row
    moved on, matches no row and raises LeaseLost. Timestamps come from `clock`."""

    def __init__(
        self,
        sessions: Sessions,
        *,
        clock: Callable[[], datetime],
        instance_id: str,
        lease: timedelta = timedelta(seconds=60),
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self._me = instance_id[:64]
        self._lease = lease

    async def add(
        self,
        xai_request_id: str,
        *,
        place: Place,
        user_id: str,
        model: str,
        conversation_id: int | None,
        reservation_id: int | None,
        due: datetime,
        expires: datetime,
    ) -> None:
        """A new pending request, first polled at `due`; other instances are told (PostgreSQL)."""
        row = DeferredRequest(
            xai_request_id=xai_request_id,
            platform=place.platform,
            workspace=place.workspace,
            channel=place.channel,
            thread=place.thread,
            user_id=user_id,
            conversation_id=conversation_id,
            model=model,
            reservation_id=reservation_id,
            next_poll_at=due,
            created_at=self._clock(),
            expires_at=expires,
        )
        async with self._sessions.begin() as session:
            session.add(row)
            await announce(session, DEFERRED, sender=self._me)

    async def open_count(self) -> int:
        """Rows not yet delivered or closed."""
        async with self._sessions() as session:
            result = await session.exec(
                select(func.count()).select_from(DeferredRequest).where(col(DeferredRequest.status).in_(OPEN))
            )
            return int(result.one())

    async def next_due(self, platforms: Collection[str]) -> tuple[datetime | None, datetime | None]:
        """When open rows of `platforms` come due: the earliest next_poll_at of the rows free to
        claim, and the earliest end of a lease another claim holds (a dead instance's row is taken
        over then). None where there is no such row."""
        now = self._clock()
        free = or_(col(DeferredRequest.lease_until).is_(None), col(DeferredRequest.lease_until) < now)
        query = select(
            func.min(case((free, col(DeferredRequest.next_poll_at)))),
            func.min(case((col(DeferredRequest.lease_until) >= now, col(DeferredRequest.lease_until)))),
        ).where(col(DeferredRequest.status).in_(OPEN), col(DeferredRequest.platform).in_(list(platforms)))
        async with self._sessions() as session:
            free_at, lease_end = (await session.exec(query)).one()
        return free_at, lease_end

    async def claim(self, platforms: Collection[str], *, due_by: datetime, limit: int) -> list[Work]:
        """Lease up to `limit` open rows of `platforms` due by `due_by` whose lease is free or ran out,
        earliest due first; concurrent claimers get disjoint rows."""
        now = self._clock()
        due: list[ColumnElement[bool]] = [
            col(DeferredRequest.status).in_(OPEN),
            col(DeferredRequest.platform).in_(list(platforms)),
            col(DeferredRequest.next_poll_at) <= due_by,
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

    async def store_result(self, work: Work, completion: Completion) -> Work:
        """pending -> fetched with the completion, whether or not the lease is still this instance's
        (the result exists only here now); LeaseLost when the row is no longer pending."""
        fetched = replace(work, status=Status.FETCHED, envelope=Envelope(completion=completion))
        statement = (
            update(DeferredRequest)
            .where(col(DeferredRequest.id) == work.id, col(DeferredRequest.status) == Status.PENDING.value)
            .values({**_values(fetched), "lease_owner": self._me, "lease_until": self._clock() + self._lease})
        )
        await self._execute(statement)
        return fetched

    async def move(
        self, work: Work, to: Status, *, envelope: Envelope | None = None, error: str | None = None
    ) -> Work:
        """From work.status to `to` (with a new envelope or error), the lease renewed."""
        moved = replace(
            work,
            status=to,
            envelope=work.envelope if envelope is None else envelope,
            error=work.error if error is None else error,
        )
        return await self._update(work, moved, lease_until=self._clock() + self._lease)

    async def save(self, work: Work, envelope: Envelope) -> Work:
        """The delivery's progress committed, the status unchanged, the lease renewed."""
        return await self.move(work, work.status, envelope=envelope)

    async def poll_later(self, work: Work, *, at: datetime) -> Work:
        """One more poll done; the row waits, unleased, until `at`."""
        return await self._release(replace(work, attempts=work.attempts + 1), work, next_poll_at=at)

    async def post_later(self, work: Work, envelope: Envelope, *, at: datetime) -> Work:
        """The delivery's progress committed; the row waits, unleased, until `at`."""
        return await self._release(replace(work, envelope=envelope), work, next_poll_at=at)

    async def fail(self, work: Work, envelope: Envelope, *, error: str) -> Work:
        """Closed as failed, for good."""
        failed = replace(work, status=Status.FAILED, envelope=envelope, error=error)
        return await self._release(failed, work)

    async def finish(self, work: Work) -> Work:
        """Closed as its envelope's final status, every part posted."""
        finished = replace(work, status=work.envelope.final)
        return await self._release(finished, work, delivered_at=self._clock())

    async def record_answer(self, work: Work, turn: HistoryMessage) -> None:
        """Keep the answer as a turn of the request's conversation, once: a successor repeating this
        after a crash finds it recorded (by the request's id) and changes nothing."""
        if work.conversation_id is None or await self._answer_recorded(
            work.conversation_id, work.xai_request_id
        ):
            return
        await store.add_turns(self._sessions, work.conversation_id, [turn], now=self._clock())

    async def link_answer(self, work: Work, message_ids: Sequence[str]) -> None:
        """Link the posted messages to the request's conversation, so that replies to them continue it."""
        if work.conversation_id is None:
            return
        await store.link_messages(
            self._sessions,
            work.conversation_id,
            platform=work.place.platform,
            channel=work.place.channel,
            message_ids=list(message_ids),
            now=self._clock(),
        )

    async def _answer_recorded(self, conversation_id: int, xai_request_id: str) -> bool:
        async with self._sessions() as session:
            found = await session.exec(
                select(col(Turn.id))
                .where(
                    col(Turn.conversation_id) == conversation_id,
                    col(Turn.xai_request_id) == xai_request_id,
                    col(Turn.role) == "assistant",
                )
                .limit(1)
            )
            return found.first() is not None

    async def _release(self, changed: Work, work: Work, **stamps: datetime) -> Work:
        return await self._update(work, changed, lease_owner=None, lease_until=None, **stamps)

    async def _update(self, work: Work, changed: Work, **columns: datetime | str | None) -> Work:
        """Write `changed` over `work` while this instance holds the row in work.status."""
        statement = (
            update(DeferredRequest)
            .where(
                col(DeferredRequest.id) == work.id,
                col(DeferredRequest.status) == work.status.value,
                col(DeferredRequest.lease_owner) == self._me,
            )
            .values({**_values(changed), **columns})
        )
        await self._execute(statement)
        return changed

    async def _execute(self, statement: Update) -> None:
        async with self._sessions.begin() as session:
            result = await session.exec(statement.execution_options(synchronize_session=False))
        if result.rowcount != 1:
            raise LeaseLost


def _values(work: Work) -> dict[str, Any]:
    """The columns a step may change."""
    return {
        "status": work.status.value,
        "attempts": work.attempts,
        "error": work.error,
        "result_json": work.envelope.dump(),
    }


def _work(row: DeferredRequest, claimed_at: datetime) -> Work:
    assert row.id is not None
    return Work(
        id=row.id,
        xai_request_id=row.xai_request_id,
        place=Place(row.platform, row.workspace, row.channel, row.thread),
        user_id=row.user_id,
        conversation_id=row.conversation_id,
        model=row.model,
        reservation_id=row.reservation_id,
        status=Status(row.status),
        attempts=row.attempts,
        expires_at=row.expires_at,
        error=row.error,
        claimed_at=claimed_at,
        envelope=Envelope.load(row.result_json),
    )
