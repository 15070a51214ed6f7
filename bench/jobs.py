"""Benchmark: deferred-request claims per second (N instances claiming M due rows, each row once), and
delivery delay after readiness (the fake xAI marks a result ready -> its post on the FakePlatform), with
the real timer (Jobs), on SQLite and PostgreSQL. Prints a table, writes bench/results/jobs.json.

Run: /work/venv/bin/python bench/jobs.py [--rows 3000] [--instances 1 3 8] [--requests 30]
     [--interval 0.25 1.0]
PostgreSQL: GROKBOT_BENCH_POSTGRES_URL (default postgresql+asyncpg://postgres@127.0.0.1:5432/postgres).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from sqlalchemy import insert, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from bot.db import Sessions, create_engine, session_factory, upgrade_async  # noqa: E402
from bot.grok import ChatMessage, ChatRequest, GrokClient  # noqa: E402
from bot.jobs import Deferrals, DeferredRequests, Jobs, Pace  # noqa: E402
from bot.platform import Place  # noqa: E402
from bot.quotas import Quotas  # noqa: E402
from bot.settings import Settings  # noqa: E402
from bot.tables import DeferredRequest  # noqa: E402
from tests.fakes.platform import FakePlatform  # noqa: E402
from tests.fakes.xai import FakeXAI, ScriptedReply  # noqa: E402

POSTGRES = os.environ.get(
    "GROKBOT_BENCH_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)
PLACE = Place("discord", "g1", "c1")
BATCH = 50
EARLY = timedelta(seconds=0.5)  # Deferrals' default: rows due this much ahead are claimed


@dataclass
class CountingPlatform(FakePlatform):
    expected: int = 0
    all_posted: asyncio.Event = field(default_factory=asyncio.Event)

    async def post_text(self, place: Place, text: str, *, private_to: str = "") -> str:
        message_id = await super().post_text(place, text, private_to=private_to)
        if len(self.messages) >= self.expected:
            self.all_posted.set()
        return message_id


def utc_now() -> datetime:
    return datetime.now(UTC)


@asynccontextmanager
async def database(kind: str) -> AsyncIterator[str]:
    """A fresh migrated database: a temporary SQLite file, or a throwaway PostgreSQL database."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory() as folder:
            url = f"sqlite+aiosqlite:///{folder}/bench.db"
            await upgrade_async(url)
            yield url
        return
    name = f"grokbot_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(POSTGRES, isolation_level="AUTOCOMMIT", pool_size=1)
    try:
        async with admin.connect() as connection:
            await connection.execute(text(f'CREATE DATABASE "{name}"'))
        url = make_url(POSTGRES).set(database=name).render_as_string(hide_password=False)
        await upgrade_async(url)
        yield url
    finally:
        async with admin.connect() as connection:
            await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


def make_deferrals(
    sessions: Sessions, grok: Any, quotas: Any, platform: FakePlatform, *, instance_id: str, **kwargs: Any
) -> Deferrals:
    return Deferrals(
        DeferredRequests(sessions, clock=utc_now, instance_id=instance_id),
        grok=grok,
        quotas=quotas,
        platforms={"discord": platform},
        clock=utc_now,
        **kwargs,
    )


async def claims_per_second(url: str, *, instances: int, rows: int) -> dict[str, Any]:
    """`instances` claimers (one engine each, like processes) take `rows` due rows in batches of 50."""
    setup = create_engine(url)
    now = datetime.now(UTC)
    async with setup.begin() as connection:
        await connection.execute(text("DELETE FROM deferred_request"))
        await connection.execute(
            insert(DeferredRequest),
            [
                {
                    "xai_request_id": f"r{i}",
                    "platform": "discord",
                    "workspace": "g1",
                    "channel": "c1",
                    "thread": "",
                    "user_id": "u",
                    "model": "grok-4.3",
                    "status": "pending",
                    "attempts": 0,
                    "next_poll_at": now - timedelta(seconds=1),
                    "created_at": now,
                    "expires_at": now + timedelta(hours=24),
                }
                for i in range(rows)
            ],
        )
    await setup.dispose()
    engines = [create_engine(url) for _ in range(instances)]
    claimed: list[list[int]] = [[] for _ in range(instances)]

    async def claimer(n: int) -> None:
        requests = DeferredRequests(session_factory(engines[n]), clock=utc_now, instance_id=f"i{n}")
        while batch := await requests.claim(["discord"], due_by=utc_now() + EARLY, limit=BATCH):
            claimed[n].extend(work.id for work in batch)

    try:
        for engine in engines:  # open one connection each before timing
            async with engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        start = time.perf_counter()
        await asyncio.gather(*(claimer(n) for n in range(instances)))
        elapsed = time.perf_counter() - start
    finally:
        for engine in engines:
            await engine.dispose()
    every = [i for ids in claimed for i in ids]
    assert len(every) == rows == len(set(every)), "a row was claimed twice or not at all"
    return {
        "instances": instances,
        "rows": rows,
        "batch": BATCH,
        "seconds": round(elapsed, 4),
        "claims_per_second": round(rows / elapsed),
        "per_instance": [len(ids) for ids in claimed],
    }


async def delivery_delay(url: str, *, requests: int, interval: float) -> dict[str, Any]:
    """Results made ready at random moments; the time until each is posted, with the real timer."""
    engine = create_engine(url)
    sessions = session_factory(engine)
    settings = Settings(_env_file=None, grokbot_timezone="UTC")  # type: ignore[call-arg]
    clock = utc_now
    fake = FakeXAI()
    await fake.start()
    platform = CountingPlatform(name="discord", expected=requests)
    try:
        async with httpx.AsyncClient() as http:
            grok = GrokClient(http, api_key=fake.api_key, base_url=fake.base_url)
            quotas = Quotas(sessions, settings, clock=clock)
            step = timedelta(seconds=interval)
            deferrals = make_deferrals(
                sessions,
                grok,
                quotas,
                platform,
                instance_id="bench",
                first_poll=step,
                max_poll=step,
                early=step / 2,
            )
            ids = []
            for i in range(requests):
                fake.queue_reply(ScriptedReply(text=f"answer {i}", deferred_pending_polls=10**9))
                request = ChatRequest(
                    model="grok-4.3", messages=(ChatMessage("user", f"q{i}"),), max_tokens=100
                )
                ids.append(
                    await deferrals.submit(
                        place=PLACE, user_id="u", request=request, reservation=None, conversation_id=None
                    )
                )
            jobs = Jobs(
                sessions=sessions,
                deferrals=deferrals,
                digests=None,
                clock=clock,
                instance_id="bench",
                pace=Pace(least=interval / 4),
            )
            jobs.start()
            ready_at: dict[str, float] = {}
            rng = random.Random(1)
            try:
                await asyncio.sleep(interval)
                for i, rid in enumerate(ids):
                    await asyncio.sleep(rng.uniform(0, 2 * interval))
                    fake._deferred[rid].pending = 0  # the fake's job finishes now
                    ready_at[f"answer {i}"] = time.perf_counter()
                async with asyncio.timeout(10 * interval + 5):
                    await platform.all_posted.wait()
            finally:
                await jobs.stop()
    finally:
        await fake.stop()
        await engine.dispose()
    posted = {e.text: e.at for e in platform.events if e.kind == "post"}
    delays = sorted(posted[t] - ready_at[t] for t in ready_at if t in posted)
    assert len(delays) == requests, f"only {len(delays)} of {requests} delivered"
    return {
        "requests": requests,
        "poll_interval_s": interval,
        "mean_ms": round(statistics.mean(delays) * 1000, 1),
        "p50_ms": round(delays[len(delays) // 2] * 1000, 1),
        "p95_ms": round(delays[int(len(delays) * 0.95) - 1] * 1000, 1),
        "max_ms": round(delays[-1] * 1000, 1),
    }


async def main(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {"claims": [], "delivery": []}
    for kind in ("sqlite", "postgresql"):
        async with database(kind) as url:
            for n in args.instances:
                results["claims"].append(
                    {"db": kind, **await claims_per_second(url, instances=n, rows=args.rows)}
                )
            for interval in args.interval:
                async with database(kind) as fresh:
                    row = await delivery_delay(fresh, requests=args.requests, interval=interval)
                results["delivery"].append({"db": kind, **row})
    return results


def report(results: dict[str, Any]) -> None:
    print(f"{'db':<11}{'instances':>10}{'rows':>7}{'seconds':>9}{'claims/s':>10}  per instance")
    for r in results["claims"]:
        print(
            f"{r['db']:<11}{r['instances']:>10}{r['rows']:>7}{r['seconds']:>9.3f}{r['claims_per_second']:>10}"
            f"  {r['per_instance']}"
        )
    print()
    print(f"{'db':<11}{'poll s':>7}{'n':>4}{'mean ms':>9}{'p50 ms':>8}{'p95 ms':>8}{'max ms':>8}")
    for r in results["delivery"]:
        print(
            f"{r['db']:<11}{r['poll_interval_s']:>7}{r['requests']:>4}{r['mean_ms']:>9}{r['p50_ms']:>8}"
            f"{r['p95_ms']:>8}{r['max_ms']:>8}"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=3000)
    parser.add_argument("--instances", type=int, nargs="+", default=[1, 3, 8])
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--interval", type=float, nargs="+", default=[0.25, 1.0])
    arguments = parser.parse_args()
    figures = asyncio.run(main(arguments))
    report(figures)
    figures["config"] = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "note": "delivery: Deferrals first_poll = max_poll = poll_interval_s, early = poll_interval_s / 2, "
        "the poller's least pause poll_interval_s / 4 (it sleeps until the next row is due); "
        "production defaults are 2 s -> 30 s backoff per request and a least pause of 0.5 s",
        **vars(arguments),
    }
    out = ROOT / "bench" / "results" / "jobs.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"\nwritten to {out.relative_to(ROOT)}")
