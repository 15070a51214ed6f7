"""The admin pages' ledger queries on SQLite and PostgreSQL against sums done by hand, with days
cut in GROKBOT_TIMEZONE (across a DST change), and `grokbot admin-link`."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.__main__ import main
from bot.admin import ledger
from bot.admin.charts import by_kind
from bot.admin.ledger import LEDGER, PastDays, Scope
from bot.db import Sessions
from tests.admin.admin_env import serve
from tests.bot.engine_env import Clock

ZONE = ZoneInfo("America/New_York")  # DST ended on 2026-11-01


async def test_daily_sums_match_a_sum_by_hand_in_local_days(sessions: Sessions) -> None:
    clock = Clock(datetime(2026, 11, 26, 3, 0, tzinfo=UTC))  # 22:00 on the 25th in New York
    async with serve(sessions, clock) as env:
        rnd = random.Random(7)
        rows = []
        for n in range(300):
            at = clock() - timedelta(minutes=rnd.randrange(40 * 24 * 60))
            row = (at, rnd.choice(("chat", "image", "digest")), rnd.choice(("grok-4.3", "grok-3-mini")),
                   rnd.choice(("T1", "T2")), rnd.randrange(1, 10**9))  # fmt: skip
            rows.append(row)
            await env.charge(at, kind=row[1], model=row[2], workspace=row[3], ticks=row[4], user=f"U{n}")
        days = ledger.local_days(clock(), ZONE, 30)
        assert days[-1].date.isoformat() == "2026-11-25" and days[0].start.hour == 4  # EDT before
        assert days[-1].start.hour == 5  # EST after the change

        def by_hand(pick: int, scope: str | None = None) -> dict[str, tuple[int, ...]]:
            sums: dict[str, list[int]] = {}
            for row in rows:
                local = row[0].astimezone(ZONE).date()
                if scope is not None and row[3] != scope:
                    continue
                for i, day in enumerate(days):
                    if day.date == local:
                        sums.setdefault(row[pick], [0] * len(days))[i] += row[4]
            return {name: tuple(values) for name, values in sums.items()}

        kinds = await ledger.by_column(sessions, LEDGER.c.kind, days, None)
        assert kinds.series == by_hand(1)
        models = await ledger.by_column(sessions, LEDGER.c.model, days, Scope("slack", "T2"))
        assert models.series == by_hand(2, "T2")
        spaces = await ledger.workspaces(sessions, None)
        assert spaces == [Scope("slack", "T1"), Scope("slack", "T2")]
        assert (await ledger.by_workspace(sessions, spaces, days)).series == {
            f"slack:{name}": values for name, values in by_hand(3).items()
        }
        assert await ledger.distinct_values(sessions, LEDGER.c.kind) == ["chat", "digest", "image"]


async def test_days_long_ended_are_read_once_and_the_days_since_every_time(sessions: Sessions) -> None:
    clock = Clock(datetime(2026, 11, 26, 12, 0, tzinfo=UTC))
    async with serve(sessions, clock) as env:
        now = clock()
        await env.charge(now - timedelta(hours=1), ticks=100)  # today
        await env.charge(now - timedelta(days=2), ticks=20)  # two days ago
        days = ledger.local_days(now, ZoneInfo("UTC"), 3)
        memo = (PastDays(), now)
        first = await ledger.by_kind(sessions, days, None, memo=memo)
        assert first.series == {"chat": (20, 0, 100)}
        # What comes later is stamped later: today gains a row, and is read again; a row that
        # lands on a day that ended long ago (never made by grokbot) is not read again.
        await env.charge(now - timedelta(minutes=5), ticks=3)
        await env.charge(now - timedelta(days=2), ticks=7)
        again = await ledger.by_kind(sessions, days, None, memo=memo)
        assert again.series == {"chat": (20, 0, 103)}
        assert (await ledger.by_kind(sessions, days, None)).series == {"chat": (27, 0, 103)}  # no memo
        # Another scope, or another query, has sums of its own.
        scoped = await ledger.by_kind(sessions, days, Scope("slack", "T1"), memo=memo)
        assert scoped.series == {"chat": (27, 0, 103)}
        models = await ledger.by_column(sessions, LEDGER.c.model, days, None, memo=memo)
        assert sum(models.series["grok-4.3"]) == 130


async def test_a_day_that_ended_within_the_hour_is_read_again(sessions: Sessions) -> None:
    clock = Clock(datetime(2026, 11, 26, 0, 30, tzinfo=UTC))  # yesterday ended 30 minutes ago
    async with serve(sessions, clock) as env:
        now = clock()
        await env.charge(now - timedelta(hours=2), ticks=10)
        days = ledger.local_days(now, ZoneInfo("UTC"), 2)
        memo = (PastDays(), now)
        assert (await ledger.by_kind(sessions, days, None, memo=memo)).series == {"chat": (10, 0)}
        await env.charge(now - timedelta(hours=1), ticks=5)  # a late row stamped yesterday
        assert (await ledger.by_kind(sessions, days, None, memo=memo)).series == {"chat": (15, 0)}


async def test_the_tool_spend_of_answers_is_its_own_series_of_the_kinds_chart(sessions: Sessions) -> None:
    async with serve(sessions) as env:
        now = env.clock()
        await env.charge(now - timedelta(hours=1), ticks=900, tools=600)
        await env.charge(now - timedelta(hours=2), ticks=100)
        await env.charge(now - timedelta(days=1), kind="image", ticks=50)
        days = ledger.local_days(now, ZoneInfo("UTC"), 2)
        kinds = await ledger.by_kind(sessions, days, None)
        assert kinds.series == {"chat": (0, 400), "image": (50, 0), "search": (0, 600)}
        assert kinds.total() == 1050  # every tick once
        assert by_kind(kinds) == {"chat": (0, 400), "images": (50, 0), "search tools": (0, 600)}


async def test_a_users_days_and_recent_requests_with_fingerprints(sessions: Sessions) -> None:
    async with serve(sessions) as env:
        now = env.clock()
        await env.said("U1", "alice", fingerprint="fp_abc")
        await env.charge(now - timedelta(hours=1), user="U1", ticks=5, request_id="req-U1")
        await env.charge(now - timedelta(days=2), user="U1", ticks=7)
        await env.charge(now - timedelta(days=2), user="U2", ticks=11)
        days = ledger.local_days(now, ZoneInfo("UTC"), 3)
        assert await ledger.user_days(sessions, Scope("slack", "T1"), "U1", days) == (7, 0, 5)
        recent = await ledger.recent_requests(sessions, Scope("slack", "T1"), "U1")
        assert [(r.cost_ticks, r.fingerprint) for r in recent] == [(5, "fp_abc"), (7, "")]
        assert await ledger.user_names(sessions, "slack", ["U1", "U2"]) == {"U1": "alice"}


@pytest.fixture
def cli_env(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {"DATABASE_URL": db_url, "XAI_API_KEY": "xai-test", "GROKBOT_ADMINS": "slack:UADMIN",
                        "GROKBOT_PUBLIC_URL": "https://bot.example.com"}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    monkeypatch.chdir("/tmp")  # no .env file


async def _run(argv: list[str]) -> int:
    import asyncio

    return await asyncio.to_thread(main, argv)


async def test_admin_link_prints_a_link_for_an_admin_only_and_revokes_all(
    cli_env: None, sessions: Sessions, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await _run(["admin-link", "--user", "slack:U5"]) == 2
    assert "not in GROKBOT_ADMINS" in capsys.readouterr().out
    assert await _run(["admin-link", "--user", "slack:UADMIN"]) == 0
    link = capsys.readouterr().out.strip().rsplit(" ", 1)[-1]
    assert link.startswith("https://bot.example.com/admin/signin/")
    from bot.admin import SignIns

    signins = SignIns(sessions, clock=lambda: datetime.now(UTC))
    session = await signins.redeem(link.rsplit("/", 1)[-1])
    assert session is not None and await signins.admin_for(session) is not None
    assert await _run(["admin-link", "--revoke-all"]) == 0
    assert "Ended 1 admin sessions" in capsys.readouterr().out
    assert await signins.admin_for(session) is None
