"""Spend near a small limit, against the fake xAI: how many answers a limit buys, and by how much
spend passes it, in one process and in two on one database.

    python -m bench.budget_caps [--postgres URL] [--no-postgres]

Bursts: 100 questions at once from one person (one process), and 2 processes x 50 on one database,
on SQLite and PostgreSQL. The fake answers each at its cap and reasons 8,000 tokens whenever it may
think: grok-4.3 is told not to think when its answer is cut; grok-4-1-fast-reasoning takes no
reasoning effort, so its cut answer is billed reasoning beyond its share. Limits are worth 0.5, 1,
5.3 and 20 whole answers. "Typical": 30 questions one after another, each answer 400 text and 1,400
reasoning tokens, against a limit worth five such answers but less than one whole reservation (the
case of issue 15). Overshoot is spend minus limit (negative: under it). Prints a table and writes
bench/results/budget_caps.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.db import create_engine, session_factory, upgrade  # noqa: E402
from bot.quotas import format_usd  # noqa: E402
from tests.bot.budget_burst import (  # noqa: E402
    Outcome,
    books,
    burst,
    burst_engine,
    outcome_of,
    processes,
    question,
    worst_case,
)
from tests.fakes.platform import FakePlatform  # noqa: E402
from tests.fakes.xai import FakeXAI, ScriptedReply  # noqa: E402

MODELS = ("grok-4.3", "grok-4-1-fast-reasoning")
WORTH = (0.5, 1.0, 5.3, 20.0)  # limits, in whole answers
THINKS = 8_000
DEFAULT_POSTGRES = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"


@asynccontextmanager
async def database(kind: str, admin_url: str) -> AsyncIterator[str]:
    """A fresh, migrated database: a SQLite file, or a PostgreSQL database dropped afterwards."""
    if kind == "sqlite":
        url = f"sqlite+aiosqlite:///{Path(tempfile.mkdtemp()) / 'bench.db'}"
        await asyncio.to_thread(upgrade, url)
        yield url
        return
    name = f"grokbot_bench_{uuid.uuid4().hex[:8]}"
    await _admin(admin_url, f'CREATE DATABASE "{name}"')
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    try:
        await asyncio.to_thread(upgrade, url)
        yield url
    finally:
        await _admin(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _admin(url: str, statement: str) -> None:
    engine = create_engine(url, isolation_level="AUTOCOMMIT", pool_size=1)
    try:
        async with engine.connect() as connection:
            await connection.execute(text(statement))
    finally:
        await engine.dispose()


async def in_one(url: str, fake: FakeXAI, model: str, limit: int) -> Outcome:
    async with burst_engine(url, fake.base_url, model=model, daily_ticks=limit) as engine:
        return await burst(engine, FakePlatform(), 100, prefix="t")


async def one_by_one(url: str, fake: FakeXAI, model: str, limit: int) -> Outcome:
    """30 questions from one person, each asked once the one before was answered or refused."""
    platform = FakePlatform()
    asked: set[str] = set()
    async with burst_engine(url, fake.base_url, model=model, daily_ticks=limit) as engine:
        for n in range(30):
            incoming = question("s", n)
            asked.add(incoming.message_id)
            await engine.handle(incoming, platform)
    return outcome_of(platform, asked)


async def measure(kind: str, admin_url: str, setting: str, model: str, worth: float) -> dict[str, Any]:
    worst = worst_case(model)
    typical = worst.least - 256 * worst.out_price + 1_800 * worst.out_price
    limit = int(worth * (typical if setting == "typical" else worst.whole))
    async with FakeXAI() as fake, database(kind, admin_url) as url:
        if setting == "typical":
            fake.default_reply = ScriptedReply(text="word " * 400, reasoning_tokens=1_400, chunk_chars=512)
            outcome = await one_by_one(url, fake, model, limit)
        else:
            fake.default_reply = ScriptedReply(at_cap=True, reasoning_tokens=THINKS, chunk_chars=512)
            if setting == "1 process":
                outcome = await in_one(url, fake, model, limit)
            else:
                outcome = await processes(url, fake.base_url, model=model, daily_ticks=limit)
        engine = create_engine(url, pool_size=1)
        try:
            after = await books(session_factory(engine))
        finally:
            await engine.dispose()
    return {
        "db": kind,
        "setting": setting,
        "model": model,
        "limit_in_answers": worth,
        "limit_ticks": limit,
        "answers": outcome.answers,
        "refusals": outcome.refusals,
        "cut": outcome.cut,
        "spend_ticks": after.spend,
        "overshoot_ticks": after.spend - limit,
        "held_after": after.held,
    }


def row(result: dict[str, Any]) -> str:
    over = result["overshoot_ticks"]
    shown = format_usd(over) if over > 0 else f"under by {format_usd(-over)}"
    return (
        f"{result['db']:<10} {result['setting']:<11} {result['model']:<24} {result['limit_in_answers']:>5} "
        f"{format_usd(result['limit_ticks']):>10} {result['answers']:>7} {result['refusals']:>8} "
        f"{result['cut']:>4} {format_usd(result['spend_ticks']):>10}  {shown}"
    )


async def main(kinds: list[str], admin_url: str) -> list[dict[str, Any]]:
    results = []
    print(f"{'db':<10} {'setting':<11} {'model':<24} {'worth':>5} {'limit':>10} {'answers':>7} "
          f"{'refusals':>8} {'cut':>4} {'spend':>10}  overshoot")  # fmt: skip
    for kind in kinds:
        runs = [
            (setting, model, worth)
            for setting in ("1 process", "2 processes")
            for model in MODELS
            for worth in WORTH
        ]
        runs += [("typical", model, 5.0) for model in MODELS]
        for setting, model, worth in runs:
            result = await measure(kind, admin_url, setting, model, worth)
            print(row(result), flush=True)
            results.append(result)
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES, help="an admin URL of a PostgreSQL server")
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    kinds = ["sqlite"] + ([] if args.no_postgres else ["postgresql"])
    figures = asyncio.run(main(kinds, args.postgres))
    out = ROOT / "bench" / "results" / "budget_caps.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(figures, indent=2) + "\n")
