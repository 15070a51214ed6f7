"""Quotas on SQLite and PostgreSQL: exact under concurrency, reserve-then-settle, periods, limits."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import BigInteger, inspect
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select

from bot.db import Sessions, create_engine, session_factory
from bot.errors import BadInput, QuotaExceeded
from bot.quotas import Charge, Limits, Quotas, Reservation, Subject, format_usd
from bot.quotas.periods import next_day_start, next_month_start, period_keys
from bot.settings import TICKS_PER_USD, Settings
from bot.tables import QuotaCounter, QuotaReservation, UsageEvent

CENT = TICKS_PER_USD // 100
NEW_YORK = ZoneInfo("America/New_York")
ALICE = Subject("discord", "guild1", "alice")
BOB = Subject("discord", "guild1", "bob")
# 23:59 on 26 November 2026 in New York, already the 27th in UTC.
LATE_EVENING = datetime(2026, 11, 27, 4, 59, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def make_settings(**values: Any) -> Settings:
    values.setdefault("grokbot_user_daily_usd", Decimal("1.00"))
    values.setdefault("grokbot_user_monthly_usd", Decimal("10.00"))
    values.setdefault("grokbot_user_daily_images", 10)
    values.setdefault("grokbot_workspace_monthly_usd", Decimal("0"))
    values.setdefault("grokbot_admins", ())
    values.setdefault("grokbot_timezone", "America/New_York")
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def make_quotas(sessions: Sessions, clock: Clock | None = None, **values: Any) -> Quotas:
    return Quotas(sessions, make_settings(**values), clock=clock or Clock(LATE_EVENING))


def chat(cost: int, key: str, **values: Any) -> Charge:
    values.setdefault("prompt_tokens", 100)
    values.setdefault("completion_tokens", 50)
    return Charge(kind="chat", model="grok-4.3", cost_ticks=cost, idempotency_key=key, **values)


async def counters(sessions: Sessions) -> dict[tuple[str, str], tuple[int, int]]:
    """(subject, period_key) -> (used, limit) for every counter row."""
    async with sessions() as session:
        rows = (await session.exec(select(QuotaCounter))).all()
    return {(row.subject, row.period_key): (row.used, row.limit) for row in rows}


async def used(sessions: Sessions, subject: str, period_key: str) -> int:
    return (await counters(sessions)).get((subject, period_key), (0, 0))[0]


async def ledger(sessions: Sessions) -> list[UsageEvent]:
    async with sessions() as session:
        return list((await session.exec(select(UsageEvent).order_by(col(UsageEvent.id)))).all())


async def states(sessions: Sessions) -> dict[int, str]:
    async with sessions() as session:
        rows = (await session.exec(select(QuotaReservation))).all()
    return {row.id or 0: row.state for row in rows}


# ---- concurrency: never a cent over -------------------------------------------------------------


async def _race(quotas: Quotas, calls: list[tuple[Subject, int]]) -> list[Reservation | BaseException]:
    return await asyncio.gather(
        *(quotas.reserve(subject, ticks=ticks) for subject, ticks in calls), return_exceptions=True
    )


def _pool(db_url: str) -> dict[str, int]:
    # SQLite serialises writers anyway, so give every caller its own connection; PostgreSQL's
    # connection slots are shared with other test sessions, so 30 racing callers must do.
    return {"pool_size": 100, "max_overflow": 0} if "sqlite" in db_url else {"pool_size": 30}


async def test_concurrent_reserves_fit_exactly_under_the_daily_limit(db_url: str) -> None:
    engine = create_engine(db_url, **_pool(db_url))
    try:
        sessions = session_factory(engine)
        quotas = make_quotas(sessions, grokbot_user_daily_usd=Decimal("0.37"))
        results = await _race(quotas, [(ALICE, CENT)] * 100)
        won = [r for r in results if isinstance(r, Reservation)]
        refused = [r for r in results if isinstance(r, QuotaExceeded)]
        assert (len(won), len(refused)) == (37, 63)
        assert {r.limit for r in refused} == {"daily spend"}
        assert len({r.id for r in won}) == 37
        rows = await counters(sessions)
        assert rows[ALICE.spend_key, "2026-11-26"] == (37 * CENT, 37 * CENT)
        assert rows[ALICE.spend_key, "2026-11"][0] == 37 * CENT
        assert list((await states(sessions)).values()) == ["held"] * 37
    finally:
        await engine.dispose()


async def test_concurrent_users_share_the_workspace_pool_exactly(db_url: str) -> None:
    engine = create_engine(db_url, **_pool(db_url))
    try:
        sessions = session_factory(engine)
        quotas = make_quotas(sessions, grokbot_workspace_monthly_usd=Decimal("0.25"))
        users = [Subject("slack", "T1", f"U{n}") for n in range(50)]
        results = await _race(quotas, [(user, CENT) for user in users for _ in range(2)])
        won = [r for r in results if isinstance(r, Reservation)]
        refused = [r for r in results if isinstance(r, QuotaExceeded)]
        assert (len(won), len(refused)) == (25, 75)
        assert {r.limit for r in refused} == {"workspace monthly spend"}
        rows = await counters(sessions)
        assert rows["workspace:slack:T1", "2026-11"] == (25 * CENT, 25 * CENT)
        # A refusal by the pool rolled back the user's own counters too.
        user_daily = sum(u for (s, p), (u, _) in rows.items() if s.startswith("user:") and "-26" in p)
        assert user_daily == 25 * CENT
    finally:
        await engine.dispose()


async def test_concurrent_reserve_settle_and_release_keep_the_books(db_url: str) -> None:
    engine = create_engine(db_url, **_pool(db_url))
    try:
        sessions = session_factory(engine)
        quotas = make_quotas(sessions, grokbot_workspace_monthly_usd=Decimal("100"))
        users = [Subject("slack", "T1", f"U{n}") for n in range(10)]

        async def flow(user: Subject, n: int) -> None:
            reservation = await quotas.reserve(user, ticks=5 * CENT, images=1)
            if n % 3:
                image = Charge(
                    kind="image", model="m", cost_ticks=n * CENT, images=1, idempotency_key=f"{user}{n}"
                )
                await quotas.settle(reservation, image)
            else:
                await quotas.release(reservation)

        # Mixed transactions over shared rows in one order: no deadlock, no lost update.
        await asyncio.gather(*(flow(user, n) for user in users for n in range(6)))
        rows = await counters(sessions)
        expected = sum(n for n in range(6) if n % 3) * CENT
        assert rows["workspace:slack:T1", "2026-11"][0] == 10 * expected
        assert {rows[u.spend_key, "2026-11-26"][0] for u in users} == {expected}
        assert {rows[u.images_key, "2026-11-26"][0] for u in users} == {4}
        assert sum(e.cost_ticks for e in await ledger(sessions)) == 10 * expected
    finally:
        await engine.dispose()


# ---- reserve, settle, release -------------------------------------------------------------------


async def test_settle_replaces_the_estimate_by_the_real_cost(sessions: Sessions) -> None:
    quotas = make_quotas(sessions)
    cheaper = await quotas.reserve(ALICE, ticks=10 * CENT)
    assert await used(sessions, ALICE.spend_key, "2026-11-26") == 10 * CENT
    await quotas.settle(cheaper, chat(3 * CENT, "evt-1"))
    assert await used(sessions, ALICE.spend_key, "2026-11-26") == 3 * CENT
    dearer = await quotas.reserve(ALICE, ticks=10 * CENT)
    await quotas.settle(dearer, chat(25 * CENT, "evt-2"))
    assert await used(sessions, ALICE.spend_key, "2026-11-26") == 28 * CENT
    assert await used(sessions, ALICE.spend_key, "2026-11") == 28 * CENT
    rows = await ledger(sessions)
    assert [(r.idempotency_key, r.cost_ticks, r.user_id) for r in rows] == [
        ("evt-1", 3 * CENT, "alice"),
        ("evt-2", 25 * CENT, "alice"),
    ]
    assert rows[0].created_at == LATE_EVENING
    assert set((await states(sessions)).values()) == {"settled"}


async def test_settle_twice_charges_once(sessions: Sessions) -> None:
    quotas = make_quotas(sessions)
    reservation = await quotas.reserve(ALICE, ticks=10 * CENT)
    await quotas.settle(reservation, chat(4 * CENT, "evt-1"))
    await quotas.settle(reservation, chat(4 * CENT, "evt-1"))
    await quotas.settle(reservation, chat(9 * CENT, "evt-other"))
    assert await used(sessions, ALICE.spend_key, "2026-11-26") == 4 * CENT
    assert [r.idempotency_key for r in await ledger(sessions)] == ["evt-1"]


async def test_a_redelivered_event_refunds_its_new_reservation(sessions: Sessions) -> None:
    quotas = make_quotas(sessions)
    first = await quotas.reserve(ALICE, ticks=10 * CENT)
    await quotas.settle(first, chat(4 * CENT, "evt-1"))
    again = await quotas.reserve(ALICE, ticks=10 * CENT)
    await quotas.settle(again, chat(4 * CENT, "evt-1"))
    assert await used(sessions, ALICE.spend_key, "2026-11-26") == 4 * CENT
    assert len(await ledger(sessions)) == 1


async def test_release_refunds_once(sessions: Sessions) -> None:
    quotas = make_quotas(sessions, grokbot_user_daily_images=4)
    kept = await quotas.reserve(ALICE, ticks=2 * CENT)
    reservation = await quotas.reserve(ALICE, ticks=10 * CENT, images=3)
    await quotas.release(reservation)
    await quotas.release(reservation)
    rows = await counters(sessions)
    assert rows[ALICE.spend_key, "2026-11-26"][0] == 2 * CENT
    assert rows[ALICE.images_key, "2026-11-26"][0] == 0
    assert await states(sessions) == {kept.id: "held", reservation.id: "released"}
    assert await ledger(sessions) == []


async def test_settle_after_release_charges_the_real_cost_once(sessions: Sessions) -> None:
    quotas = make_quotas(sessions)
    reservation = await quotas.reserve(ALICE, ticks=10 * CENT)
    await quotas.release(reservation)  # e.g. swept while a slow call was still running
    await quotas.settle(reservation, chat(7 * CENT, "evt-1"))
    await quotas.settle(reservation, chat(7 * CENT, "evt-1"))
    assert await used(sessions, ALICE.spend_key, "2026-11-26") == 7 * CENT
    assert len(await ledger(sessions)) == 1
    assert await states(sessions) == {reservation.id: "settled"}


async def test_settle_works_from_a_rebuilt_handle(sessions: Sessions) -> None:
    quotas = make_quotas(sessions, grokbot_user_daily_images=4)
    reservation = await quotas.reserve(ALICE, ticks=10 * CENT, images=4)
    image = Charge(kind="image", model="img", cost_ticks=6 * CENT, images=2, idempotency_key="i1")
    await quotas.settle(Reservation(id=reservation.id, subject=ALICE), image)
    rows = await counters(sessions)
    assert rows[ALICE.images_key, "2026-11-26"][0] == 2
    assert rows[ALICE.spend_key, "2026-11-26"][0] == 6 * CENT


# ---- limits, periods, refusals ------------------------------------------------------------------


async def test_daily_refusal_names_the_limit_the_rest_and_local_midnight(
    sessions: Sessions,
) -> None:
    quotas = make_quotas(sessions)
    await quotas.reserve(ALICE, ticks=70 * CENT)
    with pytest.raises(QuotaExceeded) as refused:
        await quotas.reserve(ALICE, ticks=40 * CENT)
    error = refused.value
    assert (error.limit, error.unit) == ("daily spend", "ticks")
    assert (error.limit_amount, error.used_amount, error.remaining) == (
        100 * CENT,
        70 * CENT,
        30 * CENT,
    )
    # Midnight of the 27th in New York is 05:00 UTC, one minute after the clock.
    assert error.resets_at == datetime(2026, 11, 27, 5, 0, tzinfo=UTC)
    # The refused attempt left nothing behind; what still fits does.
    assert await used(sessions, ALICE.spend_key, "2026-11-26") == 70 * CENT
    await quotas.reserve(ALICE, ticks=30 * CENT)


async def test_a_new_local_day_is_a_new_counter(sessions: Sessions) -> None:
    clock = Clock(LATE_EVENING)
    quotas = make_quotas(sessions, clock)
    await quotas.reserve(ALICE, ticks=100 * CENT)
    with pytest.raises(QuotaExceeded):
        await quotas.reserve(ALICE, ticks=1)
    clock.now += timedelta(minutes=1)  # 00:00 in New York
    await quotas.reserve(ALICE, ticks=100 * CENT)
    rows = await counters(sessions)
    assert rows[ALICE.spend_key, "2026-11-26"][0] == 100 * CENT
    assert rows[ALICE.spend_key, "2026-11-27"][0] == 100 * CENT
    assert rows[ALICE.spend_key, "2026-11"][0] == 200 * CENT


async def test_monthly_limit_binds_across_days_and_resets_on_the_first(sessions: Sessions) -> None:
    clock = Clock(datetime(2026, 11, 29, 15, 0, tzinfo=UTC))
    quotas = make_quotas(sessions, clock, grokbot_user_monthly_usd=Decimal("1.50"))
    await quotas.reserve(ALICE, ticks=90 * CENT)
    clock.now += timedelta(days=1)
    await quotas.reserve(ALICE, ticks=50 * CENT)
    with pytest.raises(QuotaExceeded) as refused:
        await quotas.reserve(ALICE, ticks=20 * CENT)
    assert refused.value.limit == "monthly spend"
    assert refused.value.remaining == 10 * CENT
    assert refused.value.resets_at == datetime(2026, 12, 1, 5, 0, tzinfo=UTC)
    clock.now += timedelta(days=1)  # 1 December
    await quotas.reserve(ALICE, ticks=20 * CENT)


async def test_when_day_and_month_are_both_spent_the_month_is_named(sessions: Sessions) -> None:
    quotas = make_quotas(sessions, grokbot_user_monthly_usd=Decimal("1.00"))
    await quotas.reserve(ALICE, ticks=100 * CENT)
    with pytest.raises(QuotaExceeded) as refused:
        await quotas.reserve(ALICE, ticks=CENT)
    assert refused.value.limit == "monthly spend"


async def test_images_per_day(sessions: Sessions) -> None:
    quotas = make_quotas(sessions, grokbot_user_daily_images=3)
    await quotas.reserve(ALICE, ticks=CENT, images=2)
    with pytest.raises(QuotaExceeded) as refused:
        await quotas.reserve(ALICE, ticks=CENT, images=2)
    error = refused.value
    assert (error.limit, error.unit, error.limit_amount, error.used_amount) == (
        "daily images",
        "images",
        3,
        2,
    )
    assert error.resets_at == datetime(2026, 11, 27, 5, 0, tzinfo=UTC)
    # The image refusal rolled back the spend held in the same transaction.
    assert await used(sessions, ALICE.spend_key, "2026-11-26") == CENT
    await quotas.reserve(ALICE, ticks=CENT, images=1)


async def test_the_workspace_pool_binds_everyone(sessions: Sessions) -> None:
    quotas = make_quotas(
        sessions, grokbot_workspace_monthly_usd=Decimal("1.00"), grokbot_admins=("discord:bob",)
    )
    await quotas.reserve(ALICE, ticks=60 * CENT)
    with pytest.raises(QuotaExceeded) as refused:
        await quotas.reserve(BOB, ticks=60 * CENT)
    assert refused.value.limit == "workspace monthly spend"
    assert refused.value.resets_at == datetime(2026, 12, 1, 5, 0, tzinfo=UTC)
    assert await used(sessions, BOB.spend_key, "2026-11-26") == 0
    # Another workspace has its own pool.
    await quotas.reserve(Subject("discord", "guild2", "bob"), ticks=60 * CENT)


async def test_admins_are_exempt_from_user_limits_but_counted(sessions: Sessions) -> None:
    quotas = make_quotas(sessions, grokbot_admins=("discord:bob",))
    await quotas.reserve(BOB, ticks=500 * CENT, images=50)
    await quotas.reserve(ALICE, ticks=500 * CENT, is_admin=True)
    rows = await counters(sessions)
    assert rows[BOB.spend_key, "2026-11-26"] == (500 * CENT, 0)
    assert rows[BOB.images_key, "2026-11-26"] == (50, 0)
    assert rows[ALICE.spend_key, "2026-11-26"] == (500 * CENT, 0)
    # Alice is an admin only where the platform said so; without it her limit is back.
    with pytest.raises(QuotaExceeded):
        await quotas.reserve(ALICE, ticks=CENT)


async def test_an_override_applies_at_once(sessions: Sessions) -> None:
    quotas = make_quotas(sessions)
    await quotas.reserve(ALICE, ticks=90 * CENT)
    with pytest.raises(QuotaExceeded):
        await quotas.reserve(ALICE, ticks=20 * CENT)
    limits = await quotas.set_override(ALICE, daily_ticks=200 * CENT, set_by="discord:bob")
    assert limits == Limits(daily_ticks=200 * CENT, monthly_ticks=1000 * CENT, daily_images=10)
    await quotas.reserve(ALICE, ticks=20 * CENT)
    assert (await counters(sessions))[ALICE.spend_key, "2026-11-26"] == (110 * CENT, 200 * CENT)
    # None leaves a field alone; a second call updates the same row.
    limits = await quotas.set_override(ALICE, daily_images=0, set_by="discord:bob")
    assert limits == Limits(daily_ticks=200 * CENT, monthly_ticks=1000 * CENT, daily_images=0)
    assert await quotas.limits_for(BOB) == Limits(100 * CENT, 1000 * CENT, 10)
    # Lowered below what is used: the next request is refused.
    await quotas.set_override(ALICE, daily_ticks=100 * CENT, set_by="discord:bob")
    with pytest.raises(QuotaExceeded) as refused:
        await quotas.reserve(ALICE, ticks=1)
    assert refused.value.limit_amount == 100 * CENT
    await quotas.clear_override(ALICE)
    assert await quotas.limits_for(ALICE) == Limits(100 * CENT, 1000 * CENT, 10)


async def test_overrides_refuse_negative_limits_and_workspace_subjects(sessions: Sessions) -> None:
    quotas = make_quotas(sessions)
    with pytest.raises(BadInput):
        await quotas.set_override(ALICE, daily_ticks=-1, set_by="x")
    with pytest.raises(BadInput):
        await quotas.set_override(Subject("discord", "guild1", ""), daily_ticks=1, set_by="x")


async def test_zero_means_unlimited(sessions: Sessions) -> None:
    quotas = make_quotas(
        sessions,
        grokbot_user_daily_usd=Decimal("0"),
        grokbot_user_monthly_usd=Decimal("0"),
        grokbot_user_daily_images=0,
    )
    await quotas.reserve(ALICE, ticks=10_000 * TICKS_PER_USD, images=1000)
    rows = await counters(sessions)
    # Past 2^31 ticks: PostgreSQL would refuse it in a 32-bit column; SQLite stores any integer, so
    # test_every_tick_column_is_64_bit checks the declared types on both.
    assert rows[ALICE.spend_key, "2026-11"] == (10_000 * TICKS_PER_USD, 0)


def _counts_ticks_or_tokens(table: str, column: str) -> bool:
    return column.endswith(("_ticks", "_tokens")) or (table, column) in {
        ("quota_counter", "used"),
        ("quota_counter", "limit"),
    }


def _column_types(connection: Connection) -> dict[tuple[str, str], Any]:
    inspector = inspect(connection)
    return {
        (table, column["name"]): column["type"]
        for table in inspector.get_table_names()
        for column in inspector.get_columns(table)
    }


async def test_every_tick_column_is_64_bit(engine: AsyncEngine) -> None:
    """Money in ticks passes 2^31 at about $0.21: every money and token column of the migrated
    schema is a 64-bit integer, as SQLite declares it and as PostgreSQL stores it."""
    async with engine.connect() as connection:
        types = await connection.run_sync(_column_types)
    counted = {key: kind for key, kind in types.items() if _counts_ticks_or_tokens(*key)}
    assert {
        ("quota_counter", "used"),
        ("quota_counter", "limit"),
        ("quota_override", "daily_ticks"),
        ("quota_override", "monthly_ticks"),
        ("usage_event", "cost_ticks"),
        ("usage_event", "prompt_tokens"),
        ("turn", "cost_ticks"),
        ("digest_run", "cost_ticks"),
    } <= set(counted)
    narrow = {key: str(kind) for key, kind in counted.items() if not isinstance(kind, BigInteger)}
    assert narrow == {}, f"32-bit money or token columns: {narrow}"


# ---- charge without reservation, sweeping -------------------------------------------------------


async def test_charge_without_a_reservation_is_never_refused_and_counted_once(
    sessions: Sessions,
) -> None:
    quotas = make_quotas(sessions, grokbot_workspace_monthly_usd=Decimal("1.00"))
    await quotas.charge(ALICE, chat(150 * CENT, "deferred-1", xai_request_id="req-1"))
    await quotas.charge(ALICE, chat(150 * CENT, "deferred-1"))
    digest = Charge(kind="digest", model="grok-4.3", cost_ticks=2 * CENT, idempotency_key="dg-1")
    await quotas.charge(Subject("discord", "guild1", ""), digest)
    rows = await counters(sessions)
    assert rows[ALICE.spend_key, "2026-11-26"][0] == 150 * CENT
    assert rows["workspace:discord:guild1", "2026-11"][0] == 152 * CENT
    # A workspace-level charge touches no user's counter.
    assert not any(s == "user:discord:guild1:" for s, _ in rows)
    events = await ledger(sessions)
    assert [(e.kind, e.user_id, e.xai_request_id) for e in events] == [
        ("chat", "alice", "req-1"),
        ("digest", "", ""),
    ]
    with pytest.raises(QuotaExceeded):
        await quotas.reserve(ALICE, ticks=1)


async def test_sweep_releases_only_stale_held_reservations(sessions: Sessions) -> None:
    clock = Clock(datetime(2026, 11, 26, 12, 0, tzinfo=UTC))
    quotas = make_quotas(sessions, clock)
    old = await quotas.reserve(ALICE, ticks=10 * CENT)
    settled = await quotas.reserve(ALICE, ticks=10 * CENT)
    await quotas.settle(settled, chat(CENT, "evt-1"))
    clock.now += timedelta(minutes=50)
    fresh = await quotas.reserve(ALICE, ticks=20 * CENT)
    clock.now += timedelta(minutes=20)
    assert await quotas.sweep_stale(timedelta(hours=1)) == 1
    assert await quotas.sweep_stale(timedelta(hours=1)) == 0
    assert await states(sessions) == {old.id: "released", settled.id: "settled", fresh.id: "held"}
    assert await used(sessions, ALICE.spend_key, "2026-11-26") == 21 * CENT


# ---- summary, periods and money -----------------------------------------------------------------


async def test_summary(sessions: Sessions) -> None:
    clock = Clock(datetime(2026, 11, 25, 15, 0, tzinfo=UTC))
    quotas = make_quotas(sessions, clock, grokbot_workspace_monthly_usd=Decimal("5.00"))
    await quotas.charge(ALICE, chat(30 * CENT, "yesterday", reasoning_tokens=7))
    clock.now = LATE_EVENING
    reservation = await quotas.reserve(ALICE, ticks=10 * CENT, images=2)
    image = Charge(kind="image", model="img", cost_ticks=8 * CENT, images=2, idempotency_key="i")
    await quotas.settle(reservation, image)
    await quotas.reserve(ALICE, ticks=5 * CENT)  # still held: counted in spend, not in tokens
    summary = await quotas.summary(ALICE)
    assert (summary.day_ticks, summary.month_ticks, summary.images_today) == (
        13 * CENT,
        43 * CENT,
        2,
    )
    # Tokens this month from the ledger, yesterday's call included.
    tokens = (summary.requests, summary.prompt_tokens, summary.completion_tokens, summary.reasoning_tokens)
    assert tokens == (2, 100, 50, 7)
    assert summary.remaining_day_ticks == 87 * CENT
    assert summary.remaining_month_ticks == 957 * CENT
    assert summary.remaining_images == 8
    assert summary.remaining_workspace_ticks == 457 * CENT
    assert summary.day_resets_at == datetime(2026, 11, 27, 5, 0, tzinfo=UTC)
    assert summary.month_resets_at == datetime(2026, 12, 1, 5, 0, tzinfo=UTC)
    assert not summary.exempt
    admin = await quotas.summary(ALICE, is_admin=True)
    assert admin.exempt and admin.remaining_day_ticks is None
    assert admin.remaining_workspace_ticks == 457 * CENT
    empty = await quotas.summary(BOB)
    assert (empty.day_ticks, empty.requests, empty.remaining_images) == (0, 0, 10)


@pytest.mark.parametrize(
    ("now", "zone", "keys", "day", "month"),
    [
        (LATE_EVENING, NEW_YORK, ("2026-11-26", "2026-11"), (2026, 11, 27, 5), (2026, 12, 1, 5)),
        (LATE_EVENING, ZoneInfo("UTC"), ("2026-11-27", "2026-11"), (2026, 11, 28, 0), (2026, 12, 1, 0)),
        # December rolls into January of the next year.
        (
            datetime(2026, 12, 31, 23, 30, tzinfo=UTC),
            ZoneInfo("Europe/Berlin"),
            ("2027-01-01", "2027-01"),
            (2027, 1, 1, 23),
            (2027, 1, 31, 23),
        ),
        # Havana skips midnight when DST starts: the 8th begins at 01:00 local, 05:00 UTC.
        (
            datetime(2026, 3, 7, 12, 0, tzinfo=UTC),
            ZoneInfo("America/Havana"),
            ("2026-03-07", "2026-03"),
            (2026, 3, 8, 5),
            (2026, 4, 1, 4),
        ),
        # The day after the spring-forward change in New York starts 23 h after the previous one.
        (
            datetime(2026, 3, 8, 12, 0, tzinfo=UTC),
            NEW_YORK,
            ("2026-03-08", "2026-03"),
            (2026, 3, 9, 4),
            (2026, 4, 1, 4),
        ),
    ],
)
def test_periods(
    now: datetime,
    zone: ZoneInfo,
    keys: tuple[str, str],
    day: tuple[int, ...],
    month: tuple[int, ...],
) -> None:
    assert period_keys(now, zone) == keys
    assert next_day_start(now, zone) == datetime(*day, tzinfo=UTC)
    assert next_month_start(now, zone) == datetime(*month, tzinfo=UTC)


@pytest.mark.parametrize(
    ("ticks", "text"),
    [
        (0, "$0.00"),
        (1, "$0.0000000001"),
        (123_000_000, "$0.0123"),
        (123_456_789, "$0.0123"),
        (CENT, "$0.01"),
        (50 * CENT, "$0.50"),
        (1_234_560_000, "$0.123"),
        (999_990_000_0, "$1.00"),
        (TICKS_PER_USD, "$1.00"),
        (12_345 * CENT + CENT // 2, "$123.46"),
        (-3 * CENT, "-$0.03"),
    ],
)
def test_format_usd(ticks: int, text: str) -> None:
    assert format_usd(ticks) == text


def test_charges_and_subjects_reject_what_the_database_would() -> None:
    with pytest.raises(ValueError, match="kind"):
        Charge(kind="video", model="m", cost_ticks=1, idempotency_key="k")
    with pytest.raises(ValueError, match="idempotency"):
        Charge(kind="chat", model="m", cost_ticks=1, idempotency_key="")
    with pytest.raises(ValueError, match="negative"):
        Charge(kind="chat", model="m", cost_ticks=-1, idempotency_key="k")
    with pytest.raises(ValueError, match="subject"):
        Subject("discord", "g" * 65, "u")
