"""The `grokbot usage` report: the usage_event ledger summed per user, as a table, CSV or JSON."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict, dataclass, fields
from datetime import datetime

from sqlalchemy import func, select
from sqlmodel import col

from bot.db import Sessions
from bot.errors import BadInput
from bot.quotas import exact_usd, format_usd
from bot.tables import UsageEvent

FORMATS = ("table", "csv", "json")
PLATFORMS = frozenset({"discord", "slack", "console"})


@dataclass(frozen=True)
class UsageRow:
    """One user's ledger totals; a workspace-level charge (a digest) has user_id "". `tool_calls`
    are the searches and code runs of their answers, `tool_cost_ticks` their part of `cost_ticks`."""

    platform: str
    workspace: str
    user_id: str
    requests: int
    prompt_tokens: int
    completion_tokens: int
    reasoning_tokens: int
    cached_tokens: int
    images: int
    cost_ticks: int
    tool_calls: int = 0
    tool_cost_ticks: int = 0


async def usage_rows(sessions: Sessions, *, since: datetime, user: str | None = None) -> list[UsageRow]:
    """Totals per (platform, workspace, user) of the charges since `since`, dearest first.

    `user` is "platform:user_id" or a bare user_id (then on every platform).
    """
    cost = func.sum(UsageEvent.cost_ticks).label("cost")
    query = (
        select(
            col(UsageEvent.platform),
            col(UsageEvent.workspace),
            col(UsageEvent.user_id),
            func.count(),
            func.sum(UsageEvent.prompt_tokens),
            func.sum(UsageEvent.completion_tokens),
            func.sum(UsageEvent.reasoning_tokens),
            func.sum(UsageEvent.cached_tokens),
            func.sum(UsageEvent.images),
            cost,
            func.sum(UsageEvent.tool_calls),
            func.sum(UsageEvent.tool_cost_ticks),
        )
        .where(col(UsageEvent.created_at) >= since)
        .group_by(col(UsageEvent.platform), col(UsageEvent.workspace), col(UsageEvent.user_id))
        .order_by(cost.desc(), col(UsageEvent.platform), col(UsageEvent.workspace), col(UsageEvent.user_id))
    )
    if user:
        platform, _, user_id = user.partition(":")
        if platform in PLATFORMS and user_id:
            query = query.where(col(UsageEvent.platform) == platform, col(UsageEvent.user_id) == user_id)
        else:
            query = query.where(col(UsageEvent.user_id) == user)
    async with sessions() as session:
        # Core statement on the session's connection: sqlmodel's exec() types at most 4 columns.
        rows = (await (await session.connection()).execute(query)).all()
    # PostgreSQL sums BIGINT into NUMERIC (a Decimal): back to int.
    return [
        UsageRow(platform, workspace, user_id, *(int(n) for n in totals))
        for platform, workspace, user_id, *totals in rows
    ]


def render(rows: list[UsageRow], fmt: str) -> str:
    """The report as "table" (aligned, with a total line), "csv" or "json"."""
    if fmt == "table":
        return _table(rows)
    if fmt == "csv":
        return _csv(rows)
    if fmt == "json":
        return json.dumps([_record(row) for row in rows], indent=2) + "\n"
    raise BadInput(f"unknown report format {fmt!r}; use one of {', '.join(FORMATS)}")


COUNTS = (
    *("requests", "prompt_tokens", "completion_tokens", "reasoning_tokens", "cached_tokens", "images"),
    "tool_calls",
)
HEADINGS = (
    *("PLATFORM", "WORKSPACE", "USER", "REQUESTS", "PROMPT", "COMPLETION", "REASONING", "CACHED"),
    *("IMAGES", "TOOLS", "TOOL-COST", "COST"),
)


def _table(rows: list[UsageRow]) -> str:
    lines = [list(HEADINGS)]
    for row in rows:
        counts = [f"{getattr(row, name):,}" for name in COUNTS]
        money = [format_usd(row.tool_cost_ticks), format_usd(row.cost_ticks)]
        lines.append([row.platform, row.workspace, row.user_id or "(workspace)", *counts, *money])
    totals = [f"{sum(getattr(row, name) for row in rows):,}" for name in COUNTS]
    spent = [
        format_usd(sum(row.tool_cost_ticks for row in rows)),
        format_usd(sum(row.cost_ticks for row in rows)),
    ]
    lines.append(["TOTAL", "", "", *totals, *spent])
    widths = [max(len(line[i]) for line in lines) for i in range(len(HEADINGS))]
    text = []
    for line in lines:
        # Names left, numbers right, so that digits of one magnitude stand in one column.
        cells = [
            cell.ljust(w) if i < 3 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(line, widths, strict=True))
        ]
        text.append("  ".join(cells))
    return "\n".join(text) + "\n"


def _csv(rows: list[UsageRow]) -> str:
    out = io.StringIO()
    names = [f.name for f in fields(UsageRow)]
    writer = csv.DictWriter(out, fieldnames=[*names, "cost_usd", "tool_cost_usd"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(_record(row) for row in rows)
    return out.getvalue()


def _record(row: UsageRow) -> dict[str, str | int]:
    # Dollars as an exact decimal string: a float would round, and ticks stay for machines.
    return {
        **asdict(row),
        "cost_usd": f"{exact_usd(row.cost_ticks):.10f}",
        "tool_cost_usd": f"{exact_usd(row.tool_cost_ticks):.10f}",
    }
