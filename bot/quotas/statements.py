"""The SQL of quotas. Each helper is one statement inside the caller's transaction; none reads
a counter to decide a write: the conditional UPDATE decides.

The statements every answer runs (hold, shift, open and close a reservation, record, find an
override) are built once with bound parameters: building a statement cost more CPU than running
it (bench/engine_stream.py: about 0.2 ms each on a small VM).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Update, bindparam, delete, func, insert, update
from sqlalchemy import select as sa_select
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.db import conflict_insert
from bot.quotas.values import Charge, Subject
from bot.tables import QuotaCounter, QuotaOverride, QuotaReservation, UsageEvent, table_of

Delta = tuple[str, str, int]  # (counter subject, period_key, amount)


@dataclass(frozen=True)
class Target:
    """One counter a cost goes to: `base` plus `per_unit` for each unit held, and what a refusal
    by it must say."""

    subject: str
    period_key: str
    base: int
    per_unit: int
    limit: int = field(compare=False)  # effective; 0 = unlimited (or exempt)
    name: str = field(compare=False)
    unit: str = field(compare=False)
    resets_at: datetime = field(compare=False)

    def amount(self, units: int) -> int:
        return self.base + units * self.per_unit

    def units_within(self, room: int, most: int) -> int:
        """How many units, up to `most`, fit in `room` under the limit; -1 when not even the base does."""
        if not self.limit:
            return most
        if room < self.base:
            return -1
        return most if not self.per_unit else min(most, (room - self.base) // self.per_unit)


COUNTERS = table_of(QuotaCounter)
RESERVATIONS = table_of(QuotaReservation)
LEDGER = table_of(UsageEvent)


def _counter_row() -> Update:
    counters = COUNTERS.c
    return update(COUNTERS).where(
        counters.subject == bindparam("w_subject"), counters.period_key == bindparam("w_period")
    )


# hold: add the amount, and (where there is a limit) only if it stays within it
_HOLD_ANY = (
    _counter_row()
    .values(
        used=COUNTERS.c.used + bindparam("w_amount"),
        limit=bindparam("w_limit"),
        updated_at=bindparam("w_now"),
    )
    .returning(COUNTERS.c.used)
)
_HOLD_WITHIN = _HOLD_ANY.where(COUNTERS.c.used + bindparam("w_amount") <= bindparam("w_limit"))
# claim: a write that changes nothing that counts, so the row is this transaction's until it ends
_CLAIM = _counter_row().values(updated_at=bindparam("w_now")).returning(COUNTERS.c.used)
_SHIFT = _counter_row().values(used=COUNTERS.c.used + bindparam("w_amount"), updated_at=bindparam("w_now"))
_OPEN = insert(RESERVATIONS).returning(RESERVATIONS.c.id)
_CLOSE = (
    update(RESERVATIONS)
    .where(RESERVATIONS.c.id == bindparam("w_id"), RESERVATIONS.c.state == bindparam("w_start"))
    .values(state=bindparam("w_end"), closed_at=bindparam("w_now"))
    .returning(RESERVATIONS.c.counters)
)
_RECORD = {
    name: dialect.insert(LEDGER)
    .on_conflict_do_nothing(index_elements=["idempotency_key"])
    .returning(LEDGER.c.id)
    for name, dialect in (("sqlite", sqlite), ("postgresql", postgresql))
}
_FIND_OVERRIDE = select(QuotaOverride).where(
    col(QuotaOverride.platform) == bindparam("w_platform"),
    col(QuotaOverride.workspace) == bindparam("w_workspace"),
    col(QuotaOverride.user_id) == bindparam("w_user"),
)


async def ensure(session: AsyncSession, target: Target, now: datetime) -> None:
    """Create the counter row at 0 unless it exists (a new period is a new row)."""
    create = (
        conflict_insert(session, QuotaCounter)
        .values(
            subject=target.subject, period_key=target.period_key, used=0, limit=target.limit, updated_at=now
        )
        .on_conflict_do_nothing(index_elements=["subject", "period_key"])
    )
    await session.exec(create)


async def hold(session: AsyncSession, target: Target, amount: int, now: datetime) -> bool:
    """Add `amount` if it stays within the limit, atomically; False (nothing changed) if not.

    On PostgreSQL a concurrent holder waits for the row and the WHERE is checked again against
    its new version; SQLite runs it under its single writer lock.
    """
    # The limit is rewritten on every hold so that an admin's override applies at once.
    params = {
        "w_subject": target.subject,
        "w_period": target.period_key,
        "w_amount": amount,
        "w_limit": target.limit,
        "w_now": now,
    }
    statement = _HOLD_WITHIN if target.limit else _HOLD_ANY
    return (await session.exec(statement, params=params)).first() is not None


async def claim(session: AsyncSession, target: Target, now: datetime) -> int | None:
    """Take the counter's row for the rest of the transaction: its `used`, or None when it has no
    row yet. Nobody else can change it until this transaction ends (PostgreSQL locks the row and
    returns its newest version; SQLite's writer lock is this transaction's from its first write),
    so a hold sized from this figure cannot be overtaken."""
    params = {"w_subject": target.subject, "w_period": target.period_key, "w_now": now}
    row = (await session.exec(_CLAIM, params=params)).first()
    return None if row is None else int(row[0])


async def shift(session: AsyncSession, deltas: Iterable[Delta], now: datetime) -> None:
    """Move counters unconditionally (settling, refunding), merged and in sorted order."""
    merged: dict[tuple[str, str], int] = {}
    for subject, period_key, amount in deltas:
        merged[subject, period_key] = merged.get((subject, period_key), 0) + amount
    # Every transaction takes counter rows in this same order, so two can never deadlock.
    moves = [
        {"w_subject": subject, "w_period": period_key, "w_amount": amount, "w_now": now}
        for (subject, period_key), amount in sorted(merged.items())
        if amount
    ]
    for move in moves:
        await session.exec(_SHIFT, params=move)


async def open_reservation(session: AsyncSession, targets: list[Target], units: int, now: datetime) -> int:
    params = {"counters": _dump(targets, units), "state": "held", "created_at": now}
    return int((await session.exec(_OPEN, params=params)).scalar_one())


async def close_reservation(
    session: AsyncSession, reservation_id: int, *, start: str, end: str, now: datetime
) -> list[Delta] | None:
    """Move a reservation from state `start` to `end`: its holds, or None if it was not in `start`."""
    params = {"w_id": reservation_id, "w_start": start, "w_end": end, "w_now": now}
    raw = (await session.exec(_CLOSE, params=params)).scalar_one_or_none()
    return None if raw is None else _load(raw)


async def close_stale(session: AsyncSession, *, before: datetime, now: datetime) -> list[list[Delta]]:
    """Release every reservation held since before `before`: their holds."""
    close = (
        update(QuotaReservation)
        .where(col(QuotaReservation.state) == "held", col(QuotaReservation.created_at) < before)
        .values(state="released", closed_at=now)
        .returning(col(QuotaReservation.counters))
        .execution_options(synchronize_session=False)
    )
    return [_load(raw) for raw in (await session.exec(close)).scalars().all()]


async def record(session: AsyncSession, subject: Subject, charge: Charge, now: datetime) -> bool:
    """Append the ledger row; False when its idempotency key was charged before."""
    row: dict[str, Any] = {
        "idempotency_key": charge.idempotency_key,
        "platform": subject.platform,
        "workspace": subject.workspace,
        "user_id": subject.user_id,
        "conversation_key": charge.conversation_key,
        "model": charge.model,
        "kind": charge.kind,
        "prompt_tokens": charge.prompt_tokens,
        "completion_tokens": charge.completion_tokens,
        "reasoning_tokens": charge.reasoning_tokens,
        "cached_tokens": charge.cached_tokens,
        "images": charge.images,
        "cost_ticks": charge.cost_ticks,
        "tool_calls": charge.tool_calls,
        "tool_cost_ticks": charge.tool_cost_ticks,
        "xai_request_id": charge.xai_request_id,
        "created_at": now,
    }
    append = _RECORD[session.get_bind().dialect.name]
    return (await session.exec(append, params=row)).first() is not None


async def used(session: AsyncSession, keys: list[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """`used` of the counters named by (subject, period_key); absent rows are left out."""
    query = select(QuotaCounter.subject, QuotaCounter.period_key, QuotaCounter.used).where(
        col(QuotaCounter.subject).in_({subject for subject, _ in keys}),
        col(QuotaCounter.period_key).in_({period_key for _, period_key in keys}),
    )
    return {(subject, period): amount for subject, period, amount in (await session.exec(query)).all()}


async def ledger_totals(session: AsyncSession, subject: Subject, *, since: datetime) -> tuple[int, ...]:
    """(requests, prompt, completion, reasoning tokens, tool calls, tool cost) of the subject's
    ledger rows since `since`."""
    query = sa_select(
        func.count(),
        func.coalesce(func.sum(UsageEvent.prompt_tokens), 0),
        func.coalesce(func.sum(UsageEvent.completion_tokens), 0),
        func.coalesce(func.sum(UsageEvent.reasoning_tokens), 0),
        func.coalesce(func.sum(UsageEvent.tool_calls), 0),
        func.coalesce(func.sum(UsageEvent.tool_cost_ticks), 0),
    ).where(
        col(UsageEvent.platform) == subject.platform,
        col(UsageEvent.workspace) == subject.workspace,
        col(UsageEvent.user_id) == subject.user_id,
        col(UsageEvent.created_at) >= since,
    )
    # PostgreSQL sums BIGINT into NUMERIC (a Decimal): back to int.
    # Core on the session's connection: sqlmodel's exec() types at most 4 columns.
    row = (await (await session.connection()).execute(query)).one()
    return tuple(int(value) for value in row)


async def find_override(session: AsyncSession, subject: Subject) -> QuotaOverride | None:
    params = {"w_platform": subject.platform, "w_workspace": subject.workspace, "w_user": subject.user_id}
    return (await session.exec(_FIND_OVERRIDE, params=params)).first()


async def upsert_override(
    session: AsyncSession, subject: Subject, changes: dict[str, int], *, set_by: str, now: datetime
) -> None:
    """Create or update the user's override row; fields absent from `changes` stay as they were."""
    stamp = {"set_by": set_by[:64], "updated_at": now}
    upsert = (
        conflict_insert(session, QuotaOverride)
        .values(
            platform=subject.platform,
            workspace=subject.workspace,
            user_id=subject.user_id,
            **changes,
            **stamp,
        )
        .on_conflict_do_update(index_elements=["platform", "workspace", "user_id"], set_={**changes, **stamp})
    )
    await session.exec(upsert)


async def delete_override(session: AsyncSession, subject: Subject) -> None:
    await session.exec(delete(QuotaOverride).where(*_override_of(subject)))


def _override_of(subject: Subject) -> tuple[ColumnElement[bool], ...]:
    return (
        col(QuotaOverride.platform) == subject.platform,
        col(QuotaOverride.workspace) == subject.workspace,
        col(QuotaOverride.user_id) == subject.user_id,
    )


def _dump(targets: list[Target], units: int) -> str:
    return json.dumps([[t.subject, t.period_key, t.amount(units)] for t in targets])


def _load(raw: str) -> list[Delta]:
    return [(str(subject), str(period), int(amount)) for subject, period, amount in json.loads(raw)]
