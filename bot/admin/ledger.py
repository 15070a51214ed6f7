"""What the admin pages read from the usage ledger: spend per local day by kind, model and
workspace, top spenders, and one user's days and recent requests. Queries return values.

Per-day sums use one index range per value and day (the covering indexes of migration
0003_admin_pages) instead of GROUP BY over every row: no sort, and days cut in GROKBOT_TIMEZONE.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Subquery, and_, func, literal, literal_column, select, true, union_all
from sqlalchemy.sql.elements import KeyedColumnElement

from bot.db import Sessions
from bot.quotas import day_start
from bot.reports import PLATFORMS, UsageRow, usage_rows
from bot.tables import Conversation, Turn, UsageEvent, table_of

LEDGER = table_of(UsageEvent)
TURNS = table_of(Turn)
CONVERSATIONS = table_of(Conversation)
RECENT_LIMIT = 50


@dataclass(frozen=True)
class Scope:
    """One workspace (guild, team) of one platform; None wherever every workspace is meant."""

    platform: str
    workspace: str


@dataclass(frozen=True)
class Day:
    """A local calendar day and the UTC instants it spans."""

    date: date
    start: datetime
    end: datetime


@dataclass(frozen=True)
class DailySeries:
    """Ticks per day for each named series (a kind, a model, a workspace), days oldest first."""

    days: tuple[Day, ...]
    series: dict[str, tuple[int, ...]]

    def total(self, since: datetime | None = None) -> int:
        """All series summed over the days that start at or after `since` (all days when None)."""
        keep = [i for i, day in enumerate(self.days) if since is None or day.start >= since]
        return sum(values[i] for values in self.series.values() for i in keep)


@dataclass(frozen=True)
class Request:
    """One charge of a user's, with the fingerprint of the answer it paid for when known."""

    at: datetime
    kind: str
    model: str
    fingerprint: str
    prompt_tokens: int
    completion_tokens: int
    reasoning_tokens: int
    images: int
    cost_ticks: int


def local_days(now: datetime, zone: ZoneInfo, count: int) -> tuple[Day, ...]:
    """The last `count` local days up to and including today, oldest first."""
    today = now.astimezone(zone).date()
    dates = [today - timedelta(days=n) for n in range(count - 1, -1, -1)]
    return tuple(Day(d, _midnight(d, zone), _midnight(d + timedelta(days=1), zone)) for d in dates)


def _midnight(day: date, zone: ZoneInfo) -> datetime:
    return day_start(datetime.combine(day, time(12), tzinfo=zone), zone)


def _scoped(scope: Scope | None) -> ColumnElement[bool]:
    if scope is None:
        return true()
    return and_(LEDGER.c.platform == scope.platform, LEDGER.c.workspace == scope.workspace)


async def distinct_values(
    sessions: Sessions, column: KeyedColumnElement[str], *where: ColumnElement[bool]
) -> list[str]:
    """The distinct values of an indexed ledger column (after equal `where` prefixes), found by
    one index seek per value (a recursive "loose index scan") rather than a scan of every row."""
    values = select(func.min(column).label("v")).where(*where).cte("vals", recursive=True)
    following = select(func.min(column)).where(*where, column > values.c.v).scalar_subquery()
    values = values.union_all(select(following).where(values.c.v.is_not(None)))
    async with sessions() as session:
        rows = await (await session.connection()).execute(select(values.c.v).where(values.c.v.is_not(None)))
    return [str(value) for (value,) in rows]


def _day_table(days: Sequence[Day]) -> Subquery:
    created = LEDGER.c.created_at.type
    return union_all(
        *(
            select(
                literal(n).label("n"),
                literal(day.start, created).label("s"),
                literal(day.end, created).label("e"),
            )
            for n, day in enumerate(days)
        )
    ).subquery("days")


class PastDays:
    """Per-day sums of days that ended long ago, kept between page views. The ledger only gains
    rows stamped when they are written (a deferred answer's when it is delivered), so a day that
    ended more than SETTLED ago keeps its sums: a page reads again only the days since (today's,
    yesterday's), not 90 days of index ranges per series."""

    SETTLED = timedelta(hours=1)

    def __init__(self, *, limit: int = 200_000) -> None:
        self._sums: dict[tuple[str, str, datetime], int] = {}  # (query, series, day start) -> ticks
        self._limit = limit  # entries; past it the memo starts again (a day's sums are cheap)

    def known(self, query: str, names: Sequence[str], day: Day) -> list[int] | None:
        """The day's sum for every series, or None when any is not kept."""
        sums = [self._sums.get((query, name, day.start)) for name in names]
        return None if any(value is None for value in sums) else [int(value or 0) for value in sums]

    def keep(self, query: str, names: Sequence[str], day: Day, sums: Sequence[int], now: datetime) -> None:
        if day.end > now - self.SETTLED:
            return  # still gaining rows
        if len(self._sums) >= self._limit:
            self._sums.clear()
        for name, value in zip(names, sums, strict=True):
            self._sums[query, name, day.start] = value


async def daily_sums(
    sessions: Sessions,
    days: Sequence[Day],
    series: dict[str, ColumnElement[bool]],
    scope: Scope | None,
    *,
    amounts: dict[str, ColumnElement[int]] | None = None,
    past: tuple[PastDays, str, datetime] | None = None,
) -> DailySeries:
    """Ticks per day for each series (a condition on the ledger), summing its amount (the cost
    unless `amounts` names another); series that spent nothing are left out. With `past` (the
    memo, a name for this query and scope, now), days long ended are read once."""
    names = list(series)
    totals = [[0] * len(days) for _ in names]
    todo = list(range(len(days)))
    if past is not None:
        memo, query, _ = past
        todo = []
        for n, day in enumerate(days):
            known = memo.known(query, names, day)
            if known is None:
                todo.append(n)
            else:
                for values, value in zip(totals, known, strict=True):
                    values[n] = value
    if names and todo:
        for n, sums in await _read_days(sessions, [days[n] for n in todo], series, scope, amounts or {}):
            for values, value in zip(totals, sums, strict=True):
                values[todo[n]] = value
            if past is not None:
                past[0].keep(past[1], names, days[todo[n]], sums, past[2])
    kept = {name: tuple(values) for name, values in zip(names, totals, strict=True) if any(values)}
    return DailySeries(tuple(days), kept)


async def _read_days(
    sessions: Sessions,
    days: Sequence[Day],
    series: dict[str, ColumnElement[bool]],
    scope: Scope | None,
    amount: dict[str, ColumnElement[int]],
) -> list[tuple[int, list[int]]]:
    """(index in `days`, each series' sum) for every day, by one index range per series and day."""
    table = _day_table(days)
    columns = [
        select(func.coalesce(func.sum(amount.get(name, LEDGER.c.cost_ticks)), 0))
        .where(cond, _scoped(scope), LEDGER.c.created_at >= table.c.s, LEDGER.c.created_at < table.c.e)
        .scalar_subquery()
        for name, cond in series.items()
    ]
    async with sessions() as session:
        rows = await (await session.connection()).execute(select(table.c.n, *columns))
    # PostgreSQL sums BIGINT into NUMERIC: back to int.
    return [(int(n), [int(value) for value in sums]) for n, *sums in rows]


Memo = tuple[PastDays, datetime]  # the memo of days long ended, and now


def _past(memo: Memo | None, query: str, scope: Scope | None) -> tuple[PastDays, str, datetime] | None:
    if memo is None:
        return None
    where = "all" if scope is None else f"{scope.platform}:{scope.workspace}"
    return memo[0], f"{query}@{where}", memo[1]


async def by_column(
    sessions: Sessions,
    column: KeyedColumnElement[str],
    days: Sequence[Day],
    scope: Scope | None,
    *,
    memo: Memo | None = None,
) -> DailySeries:
    """Ticks per day for each value of `column` (kind or model)."""
    values = await distinct_values(sessions, column)
    series = {value: column == value for value in values}
    return await daily_sums(sessions, days, series, scope, past=_past(memo, column.key, scope))


async def by_kind(
    sessions: Sessions, days: Sequence[Day], scope: Scope | None, *, memo: Memo | None = None
) -> DailySeries:
    """Ticks per day for each kind, with what answers spent on tools apart, as the kind "search"
    (tools run only in chat answers: the kind index covers their cost)."""
    kinds = await distinct_values(sessions, LEDGER.c.kind)
    series = {kind: LEDGER.c.kind == kind for kind in kinds}
    amounts = {kind: LEDGER.c.cost_ticks - LEDGER.c.tool_cost_ticks for kind in kinds}
    if "chat" in kinds:
        series["search"] = LEDGER.c.kind == "chat"
        amounts["search"] = LEDGER.c.tool_cost_ticks
    return await daily_sums(sessions, days, series, scope, amounts=amounts, past=_past(memo, "kinds", scope))


async def workspaces(sessions: Sessions, scope: Scope | None) -> list[Scope]:
    """Every workspace in the ledger (or just the scope's), one index seek each."""
    if scope is not None:
        return [scope]
    found = []
    for platform in sorted(PLATFORMS):
        names = await distinct_values(sessions, LEDGER.c.workspace, LEDGER.c.platform == platform)
        found += [Scope(platform, name) for name in names]
    return found


async def by_workspace(
    sessions: Sessions, spaces: Sequence[Scope], days: Sequence[Day], *, memo: Memo | None = None
) -> DailySeries:
    series = {f"{space.platform}:{space.workspace}": _scoped(space) for space in spaces}
    return await daily_sums(sessions, days, series, None, past=_past(memo, "workspaces", None))


async def top_spenders(sessions: Sessions, *, since: datetime, scope: Scope | None) -> list[UsageRow]:
    """`grokbot usage`'s rows since `since`, dearest first, within the scope."""
    rows = await usage_rows(sessions, since=since)
    if scope is None:
        return rows
    return [row for row in rows if (row.platform, row.workspace) == (scope.platform, scope.workspace)]


async def user_days(sessions: Sessions, user: Scope, user_id: str, days: Sequence[Day]) -> tuple[int, ...]:
    """One user's ticks per day (a user's rows are few: summed here, by local day)."""
    query = select(LEDGER.c.created_at, LEDGER.c.cost_ticks).where(
        _scoped(user), LEDGER.c.user_id == user_id, LEDGER.c.created_at >= days[0].start
    )
    starts = [day.start for day in days]
    totals = [0] * len(days)
    async with sessions() as session:
        for at, cost in await (await session.connection()).execute(query):
            index = bisect.bisect_right(starts, at) - 1
            if 0 <= index < len(days) and at < days[index].end:
                totals[index] += int(cost)
    return tuple(totals)


async def recent_requests(sessions: Sessions, user: Scope, user_id: str) -> list[Request]:
    """A user's last charges, newest first."""
    fingerprint = (
        select(TURNS.c.fingerprint)
        .where(LEDGER.c.xai_request_id != "", TURNS.c.xai_request_id == LEDGER.c.xai_request_id)
        .limit(1)
        .scalar_subquery()
    )
    query = (
        select(
            LEDGER.c.created_at,
            LEDGER.c.kind,
            LEDGER.c.model,
            func.coalesce(fingerprint, literal_column("''")),
            LEDGER.c.prompt_tokens,
            LEDGER.c.completion_tokens,
            LEDGER.c.reasoning_tokens,
            LEDGER.c.images,
            LEDGER.c.cost_ticks,
        )
        .where(_scoped(user), LEDGER.c.user_id == user_id)
        .order_by(LEDGER.c.created_at.desc(), LEDGER.c.id.desc())
        .limit(RECENT_LIMIT)
    )
    async with sessions() as session:
        rows = (await (await session.connection()).execute(query)).all()
    return [
        Request(at, kind, model, fp or "", *(int(n) for n in counts)) for at, kind, model, fp, *counts in rows
    ]


async def user_names(sessions: Sessions, platform: str, user_ids: Sequence[str]) -> dict[str, str]:
    """The names users last wrote under on `platform` (from their turns), by user id."""
    if not user_ids:
        return {}
    query = (
        select(TURNS.c.author_id, func.max(TURNS.c.author_name))
        .join(CONVERSATIONS, CONVERSATIONS.c.id == TURNS.c.conversation_id)
        .where(
            TURNS.c.author_id.in_(list(user_ids)),
            TURNS.c.role == "user",
            CONVERSATIONS.c.platform == platform,
        )
        .group_by(TURNS.c.author_id)
    )
    async with sessions() as session:
        return {
            str(user): str(name) for user, name in await (await session.connection()).execute(query) if name
        }
