"""The `grokbot usage` report on SQLite and PostgreSQL: ledger totals per user, three renderings."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta

import pytest

from bot.db import Sessions
from bot.errors import BadInput
from bot.reports import UsageRow, render, usage_rows
from bot.settings import TICKS_PER_USD
from bot.tables import UsageEvent

START = datetime(2026, 11, 1, tzinfo=UTC)
CENT = TICKS_PER_USD // 100


def event(key: str, platform: str, user: str, *, days: int, cost: int, **values: int) -> UsageEvent:
    return UsageEvent(
        idempotency_key=key,
        platform=platform,
        workspace="W1",
        user_id=user,
        kind="image" if values.get("images") else "chat",
        cost_ticks=cost,
        created_at=START + timedelta(days=days),
        **values,
    )


@pytest.fixture
async def filled(sessions: Sessions) -> Sessions:
    async with sessions.begin() as session:
        session.add_all(
            [
                event("old", "slack", "U1", days=-3, cost=500 * CENT, prompt_tokens=9),
                event(
                    "a1",
                    "slack",
                    "U1",
                    days=1,
                    cost=3 * CENT,
                    prompt_tokens=100,
                    completion_tokens=20,
                    tool_calls=2,
                    tool_cost_ticks=CENT,
                ),
                event("a2", "slack", "U1", days=2, cost=4 * CENT, prompt_tokens=50, reasoning_tokens=7),
                event("a3", "slack", "U1", days=2, cost=70 * CENT, images=2),
                event("b1", "discord", "U1", days=1, cost=1, prompt_tokens=1, cached_tokens=1),
                event("c1", "slack", "U2", days=5, cost=3 * TICKS_PER_USD, completion_tokens=4),
            ]
        )
    return sessions


async def test_rows_sum_the_ledger_per_user_since_a_date(filled: Sessions) -> None:
    rows = await usage_rows(filled, since=START)
    assert rows == [
        UsageRow("slack", "W1", "U2", 1, 0, 4, 0, 0, 0, 3 * TICKS_PER_USD),
        UsageRow("slack", "W1", "U1", 3, 150, 20, 7, 0, 2, 77 * CENT, 2, CENT),
        UsageRow("discord", "W1", "U1", 1, 1, 0, 0, 1, 0, 1),
    ]
    # The row from before `since` counts once `since` moves back.
    earlier = await usage_rows(filled, since=START - timedelta(days=7))
    assert earlier[0] == UsageRow("slack", "W1", "U1", 4, 159, 20, 7, 0, 2, 577 * CENT, 2, CENT)
    assert await usage_rows(filled, since=START + timedelta(days=30)) == []


async def test_user_filter_takes_platform_user_or_a_bare_id(filled: Sessions) -> None:
    both = await usage_rows(filled, since=START, user="U1")
    assert [(row.platform, row.user_id) for row in both] == [("slack", "U1"), ("discord", "U1")]
    one = await usage_rows(filled, since=START, user="discord:U1")
    assert [(row.platform, row.requests) for row in one] == [("discord", 1)]
    assert await usage_rows(filled, since=START, user="slack:nobody") == []


ROWS = [
    UsageRow("slack", "T0123", "U2", 1, 0, 4, 0, 0, 0, 3 * TICKS_PER_USD),
    UsageRow("discord", "1234567890", "42", 12, 15_000, 2_000, 700, 300, 2, 77 * CENT, 3, 5 * CENT),
    UsageRow("discord", "1234567890", "", 1, 10, 0, 0, 0, 0, 1),
]


def test_table_is_aligned_and_totals_every_column() -> None:
    lines = render(ROWS, "table").splitlines()
    assert lines[0].split() == [
        *("PLATFORM", "WORKSPACE", "USER", "REQUESTS", "PROMPT", "COMPLETION", "REASONING"),
        *("CACHED", "IMAGES", "TOOLS", "TOOL-COST", "COST"),
    ]
    assert len({len(line) for line in lines}) == 1  # numbers right-aligned to one edge
    assert lines[2].split() == [
        *("discord", "1234567890", "42", "12", "15,000", "2,000", "700", "300", "2", "3", "$0.05", "$0.77"),
    ]
    assert lines[3].split()[2] == "(workspace)"
    assert lines[-1].split() == ["TOTAL", "14", "15,010", "2,004", "700", "300", "2", "3", "$0.05", "$3.77"]


def test_table_of_nothing_still_has_a_zero_total() -> None:
    assert render([], "table").splitlines()[-1].split() == ["TOTAL", *["0"] * 7, "$0.00", "$0.00"]


def test_csv_parses_back() -> None:
    parsed = list(csv.DictReader(io.StringIO(render(ROWS, "csv"))))
    assert len(parsed) == 3
    assert parsed[1] == {
        "platform": "discord",
        "workspace": "1234567890",
        "user_id": "42",
        "requests": "12",
        "prompt_tokens": "15000",
        "completion_tokens": "2000",
        "reasoning_tokens": "700",
        "cached_tokens": "300",
        "images": "2",
        "cost_ticks": str(77 * CENT),
        "tool_calls": "3",
        "tool_cost_ticks": str(5 * CENT),
        "cost_usd": "0.7700000000",
        "tool_cost_usd": "0.0500000000",
    }
    assert parsed[2]["cost_usd"] == "0.0000000001"


def test_json_parses_back_with_exact_dollars_and_integer_ticks() -> None:
    parsed = json.loads(render(ROWS, "json"))
    assert [row["cost_ticks"] for row in parsed] == [3 * TICKS_PER_USD, 77 * CENT, 1]
    assert [row["cost_usd"] for row in parsed] == ["3.0000000000", "0.7700000000", "0.0000000001"]
    assert parsed[1]["prompt_tokens"] == 15_000
    assert json.loads(render([], "json")) == []


def test_unknown_format_says_what_is_accepted() -> None:
    with pytest.raises(BadInput, match="table, csv, json"):
        render(ROWS, "xml")
