"""Benchmark: the admin overview page (GET /admin/ over HTTP, signed in) over a ledger of
1,000,000 rows on SQLite, with the indexes of migration 0003_admin_pages and without them (the
same file less those indexes), measured interleaved: each view as the first since the start (no
day's sums kept: bot/admin/ledger.py PastDays), and views again (the days long ended kept, today's
and yesterday's read). Prints a table, writes bench/results/admin_overview.json.

Run: python bench/admin_overview.py [--rows 1000000] [--days 120] [--rounds 15]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402

from bench.timing import print_table, save  # noqa: E402
from bot.admin import Admin, SignIns, mount  # noqa: E402
from bot.admin.ledger import PastDays  # noqa: E402
from bot.db import create_engine, session_factory, upgrade  # noqa: E402
from bot.quotas import Quotas  # noqa: E402
from bot.settings import Settings  # noqa: E402
from bot.web import WebServer  # noqa: E402

INDEXES = ("ix_usage_event_kind_time", "ix_usage_event_model_time", "ix_usage_event_workspace_time")
KINDS = ("chat",) * 8 + ("image", "deferred", "digest")
MODELS = ("grok-4.3", "grok-3-mini", "grok-4.5", "grok-imagine-image")


def seed(path: Path, *, rows: int, days: int, now: datetime) -> None:
    """`rows` ledger rows spread evenly over the last `days` days: 2,000 users in 20 workspaces, one
    answer in four with search tool calls (the overview's "search tools" share)."""
    upgrade(f"sqlite+aiosqlite:///{path}")
    rnd = random.Random(1)
    span = days * 86400
    with sqlite3.connect(path) as db:
        db.executemany(
            "INSERT INTO usage_event (idempotency_key, platform, workspace, user_id, conversation_key, model,"
            " kind, prompt_tokens, completion_tokens, reasoning_tokens, cached_tokens, images, cost_ticks,"
            " tool_calls, tool_cost_ticks, xai_request_id, created_at)"
            " VALUES (?, ?, ?, ?, '', ?, ?, 100, 50, 0, 0, 0, ?, ?, ?, '', ?)",
            (
                (
                    f"k{i}",
                    "slack" if i % 3 else "discord",
                    f"W{i % 20}",
                    f"U{rnd.randrange(2000)}",
                    rnd.choice(MODELS),
                    rnd.choice(KINDS),
                    rnd.randrange(1, 10**8),
                    *searched(i),
                    (now - timedelta(seconds=span * i / rows)).replace(tzinfo=None).isoformat(sep=" "),
                )
                for i in range(rows)
            ),
        )
        db.execute("ANALYZE")


def searched(i: int) -> tuple[int, int]:
    """One answer in four searched: its tool calls and their cost ($5 per 1,000 calls)."""
    calls = (i % 4 == 0) * (1 + i % 3)
    return calls, calls * 50_000_000


def without_indexes(source: Path, target: Path) -> None:
    shutil.copy(source, target)
    with sqlite3.connect(target) as db:
        for name in INDEXES:
            db.execute(f"DROP INDEX {name}")
        db.execute("VACUUM")


class Overview:
    """One database's overview page on its own web server, signed in."""

    def __init__(self, path: Path, now: datetime, *, first_view: bool) -> None:
        self.url = f"sqlite+aiosqlite:///{path}"
        self.now = now
        self.first_view = first_view  # each view as the first since the start: no day's sums kept
        self.times: list[float] = []

    async def start(self) -> None:
        settings = Settings(_env_file=None, database_url=self.url, grokbot_workspace_monthly_usd=50)  # type: ignore[call-arg]
        self.db = create_engine(self.url)
        sessions = session_factory(self.db)
        self.web = WebServer(port=0, host="127.0.0.1")
        quotas = Quotas(sessions, settings, clock=lambda: self.now)
        self.site = mount(
            self.web, sessions=sessions, settings=settings, quotas=quotas, clock=lambda: self.now
        )
        await self.web.start()
        token = await SignIns(sessions, clock=lambda: self.now).issue_link(Admin("slack", "UADMIN"))
        self.http = aiohttp.ClientSession(self.web.url, cookie_jar=aiohttp.CookieJar(unsafe=True))
        async with self.http.post("/admin/signin", data={"token": token}, allow_redirects=False) as response:
            assert response.status == 303

    async def measure(self) -> None:
        if self.first_view:
            self.site.past = PastDays()
        started = time.perf_counter()
        async with self.http.get("/admin/") as response:
            body = await response.read()
        assert response.status == 200 and b"chart-kinds" in body
        self.times.append(time.perf_counter() - started)

    async def stop(self) -> None:
        await self.http.close()
        await self.web.stop()
        await self.db.dispose()


def figures(times: list[float]) -> dict[str, float]:
    ordered = sorted(times)
    return {
        "p50_ms": statistics.median(ordered) * 1000,
        "p95_ms": ordered[max(0, round(0.95 * len(ordered)) - 1)] * 1000,
        "runs": len(ordered),
    }


def prepare(args: argparse.Namespace, folder: Path, now: datetime) -> tuple[Path, Path]:
    indexed, bare = folder / "indexed.db", folder / "bare.db"
    started = time.perf_counter()
    seed(indexed, rows=args.rows, days=args.days, now=now)
    without_indexes(indexed, bare)
    print(f"seeded {args.rows:,} rows over {args.days} days in {time.perf_counter() - started:.0f} s")
    return indexed, bare


async def run(args: argparse.Namespace, indexed: Path, bare: Path, now: datetime) -> dict[str, Any]:
    pages = {
        "with the indexes, first view": Overview(indexed, now, first_view=True),
        "with the indexes, again": Overview(indexed, now, first_view=False),
        "without them, first view": Overview(bare, now, first_view=True),
    }
    for page in pages.values():
        await page.start()
        await page.measure()  # warm the page cache; not counted
        page.times.clear()
    for _ in range(args.rounds):
        for page in pages.values():  # interleaved, so drift on the machine touches both alike
            await page.measure()
    for page in pages.values():
        await page.stop()
    return {"rows": args.rows, "days": args.days, **{name: figures(p.times) for name, p in pages.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=120, help="the ledger's span (the overview shows 90)")
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    now = datetime.now(UTC)
    with tempfile.TemporaryDirectory() as folder:
        indexed, bare = prepare(args, Path(folder), now)
        results = asyncio.run(run(args, indexed, bare, now))
    rows = []
    for name in results:
        if not isinstance(results[name], dict):
            continue
        target = "p50 < 300 ms" if name.startswith("with the indexes") else ""
        rows.append((f"overview p50, {name}", f"{results[name]['p50_ms']:.0f} ms", target))
        rows.append((f"overview p95, {name}", f"{results[name]['p95_ms']:.0f} ms", ""))
    print_table(rows)
    save(results, ROOT / "bench" / "results" / "admin_overview.json")


if __name__ == "__main__":
    main()
