"""A burst of questions from one person against a small spend limit, through a whole engine, and the
books after it: shared by tests/bot/test_budget_caps.py and bench/budget_caps.py.

Run as a process (`processes()` starts several on one database):

    python -m tests.bot.budget_burst DB_URL XAI_BASE_URL COUNT PREFIX MODEL DAILY_TICKS

it prints "ready" once its engine is built, asks COUNT questions at once when a line comes on
stdin, and prints its Outcome as JSON.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from sqlmodel import col, func, select

from bot.allowance import MIN_ANSWER_TOKENS, full_allowance
from bot.conversation import DEFAULT_SYSTEM_PROMPT, build_prompt
from bot.db import Sessions, create_engine, session_factory
from bot.engine import Engine
from bot.grok import GrokClient, PriceBook, RetryPolicy
from bot.grok.net import AsyncioTransport
from bot.platform import Author, Incoming, Place
from bot.quotas import Quotas
from bot.settings import TICKS_PER_USD, Settings
from bot.tables import QuotaReservation, UsageEvent
from tests.bot.engine_env import Clock
from tests.fakes.platform import FakePlatform
from tests.fakes.xai.models import API_KEY

ROOT = Path(__file__).resolve().parents[2]
QUESTION = "How do spend limits work?"
ASKER = Author("U1", "alice")
CUT = "I stopped here"


@dataclass(frozen=True)
class Outcome:
    """What the people saw: answers given, refusals, and answers that ended saying the budget cut them."""

    answers: int
    refusals: int
    cut: int


@dataclass(frozen=True)
class Books:
    """What the database says after the burst: billed spend, answers charged, holds still open."""

    spend: int
    charged: int
    held: int


@dataclass(frozen=True)
class Worst:
    """An answer's reservation to QUESTION from `model`: whole, and the smallest worth starting."""

    whole: int
    least: int
    out_price: int  # ticks per output token


def worst_case(model: str) -> Worst:
    """What the engine reserves for QUESTION, from the same prompt and allowance it builds."""
    prompt = build_prompt(
        system=DEFAULT_SYSTEM_PROMPT.format(platform="Fake"),
        history=(),
        user_name=ASKER.name,
        user_text=QUESTION,
        context_window=PriceBook().context_window(model),
        answer_budget=full_allowance(model, None).total,
    )
    prices = PriceBook().token_prices(model)
    base = prompt.estimated_tokens * prices.prompt
    whole = base + full_allowance(model, None).total * prices.completion
    return Worst(whole, base + MIN_ANSWER_TOKENS * prices.completion, prices.completion)


def burst_settings(xai_base_url: str, *, model: str, daily_ticks: int) -> Settings:
    values: dict[str, Any] = {
        "xai_api_key": API_KEY,
        "xai_base_url": xai_base_url,
        "grokbot_model": model,
        "grokbot_edit_interval_s": 0.2,
        "grokbot_user_daily_usd": Decimal(daily_ticks) / TICKS_PER_USD,
        "grokbot_user_monthly_usd": Decimal(0),
        # The fake answers at the requested cap on Chat Completions (ScriptedReply.at_cap).
        "grokbot_xai_api": "chat",
    }
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


async def burst(engine: Engine, platform: FakePlatform, count: int, *, prefix: str) -> Outcome:
    """COUNT questions from one person at once, each in its own thread, all answered or refused."""
    asked = [question(prefix, n) for n in range(count)]
    await asyncio.gather(*(engine.handle(incoming, platform) for incoming in asked))
    return outcome_of(platform, {incoming.message_id for incoming in asked})


def question(prefix: str, n: int) -> Incoming:
    """QUESTION, asked for the `n`th time, in a thread of its own."""
    return Incoming(
        place=Place("fake", "W1", "C1", f"{prefix}{n}"),
        author=ASKER,
        text=QUESTION,
        message_id=f"{prefix}q{n}",
        event_id=f"{prefix}e{n}",
        addressed=True,
    )


def outcome_of(platform: FakePlatform, questions: set[str]) -> Outcome:
    answers = {m.place for m in platform.messages if m.reply_to in questions and not m.private_to}
    # An answer longer than a message goes on in more messages; its last one holds its end.
    ends = {m.place.thread: m.text for m in platform.messages if not m.private_to}
    return Outcome(
        answers=len(answers),
        refusals=sum(1 for m in platform.messages if m.private_to),
        cut=sum(1 for text in ends.values() if CUT in text),
    )


async def books(sessions: Sessions) -> Books:
    async with sessions() as session:
        spend, charged = (
            await session.exec(select(func.coalesce(func.sum(UsageEvent.cost_ticks), 0), func.count()))
        ).one()
        held = (await session.exec(select(func.count()).where(col(QuotaReservation.state) == "held"))).one()
    return Books(int(spend), int(charged), int(held))


@contextlib.asynccontextmanager
async def burst_engine(
    db_url: str, xai_base_url: str, *, model: str, daily_ticks: int
) -> AsyncIterator[Engine]:
    """A whole engine on `db_url` and the xAI at `xai_base_url`, its clock at a fixed noon (so that
    several processes count in the same day), a user's daily limit of `daily_ticks`."""
    settings = burst_settings(xai_base_url, model=model, daily_ticks=daily_ticks)
    database = create_engine(db_url, pool_size=20)
    try:
        async with httpx.AsyncClient(transport=AsyncioTransport()) as http:
            retry = RetryPolicy(attempts=4, base=0.001, cap=0.005)
            grok = GrokClient(http, api_key=API_KEY, base_url=xai_base_url, retry=retry)
            sessions = session_factory(database)
            quotas = Quotas(sessions, settings, clock=Clock())
            yield Engine(settings, grok=grok, sessions=sessions, quotas=quotas, clock=Clock())
    finally:
        await database.dispose()


async def processes(
    db_url: str, xai_base_url: str, *, model: str, daily_ticks: int, count: int = 2, each: int = 50
) -> Outcome:
    """`count` OS processes on one database, `each` questions at once in each, all asking only
    once all are ready: what they saw, summed."""
    children = [
        await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "tests.bot.budget_burst"),
            *(db_url, xai_base_url, str(each), f"p{n}-", model, str(daily_ticks)),
            cwd=ROOT,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        for n in range(count)
    ]
    try:
        for child in children:
            assert child.stdout is not None
            ready = await child.stdout.readline()
            if ready.strip() != b"ready":
                raise RuntimeError(f"a burst process did not start: {ready!r}")
        seen = [json.loads((await child.communicate(b"go\n"))[0]) for child in children]
    finally:
        for child in children:
            if child.returncode is None:
                child.kill()
                await child.wait()
    return Outcome(*(sum(outcome[name] for outcome in seen) for name in ("answers", "refusals", "cut")))


async def _serve(db_url: str, xai_base_url: str, count: int, prefix: str, model: str, daily: int) -> None:
    async with burst_engine(db_url, xai_base_url, model=model, daily_ticks=daily) as engine:
        print("ready", flush=True)
        await asyncio.to_thread(sys.stdin.readline)
        outcome = await burst(engine, FakePlatform(), count, prefix=prefix)
        print(json.dumps(asdict(outcome)), flush=True)


if __name__ == "__main__":
    url, base, size, tag, name, ticks = sys.argv[1:7]
    asyncio.run(_serve(url, base, int(size), tag, name, int(ticks)))
