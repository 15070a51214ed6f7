"""Client-side pacing: the concurrency limit and per-model RPM/TPM budgets queue requests."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from bot.errors import GrokRateLimited
from bot.grok import Budget, ContentDelta, Pacing
from bot.grok.net import AsyncioTransport
from tests.fakes.xai import FakeXAI, ScriptedReply, fake_xai  # noqa: F401
from tests.grok import Clock, Sleeps, ask, client


async def test_concurrency_limit_holds_for_completions(fake_xai: FakeXAI) -> None:
    for i in range(6):
        fake_xai.queue_reply(ScriptedReply(text=f"reply {i}", first_token_delay=0.15))
    async with httpx.AsyncClient(transport=AsyncioTransport()) as http:
        grok = client(fake_xai, http, pacing=Pacing(concurrency=2))
        results = await asyncio.gather(*(grok.complete(ask(f"q{i}")) for i in range(6)))
    assert sorted(r.text for r in results) == [f"reply {i}" for i in range(6)]
    assert fake_xai.max_in_flight == 2


async def test_concurrency_limit_holds_for_streams(fake_xai: FakeXAI) -> None:
    fake_xai.default_reply = ScriptedReply(text="abcdefgh", chunk_chars=2, tokens_per_second=40)

    async def one(grok_text: str) -> str:
        pieces = [e.text async for e in grok.stream(ask(grok_text)) if isinstance(e, ContentDelta)]
        return "".join(pieces)

    async with httpx.AsyncClient(transport=AsyncioTransport()) as http:
        grok = client(fake_xai, http, pacing=Pacing(concurrency=2))
        texts = await asyncio.gather(*(one(f"q{i}") for i in range(6)))
    assert texts == ["abcdefgh"] * 6
    assert fake_xai.max_in_flight == 2
    assert grok.pacing.in_flight == 0


async def test_rpm_budget_queues_instead_of_drawing_429(fake_xai: FakeXAI) -> None:
    clock = Clock()
    sleeps = Sleeps(clock)
    fake_xai.now = clock
    fake_xai.rpm_limit = 2
    async with httpx.AsyncClient(transport=AsyncioTransport()) as http:
        grok = client(fake_xai, http, pacing=Pacing(rpm=2, clock=clock, sleep=sleeps))
        for i in range(3):
            await grok.complete(ask(f"q{i}"))
    assert len(fake_xai.chat_requests()) == 3  # no 429 was drawn, so nothing was resent
    assert sleeps.delays == [pytest.approx(60.0, abs=0.01)]


async def test_without_the_budget_the_fake_answers_429(fake_xai: FakeXAI) -> None:
    fake_xai.now = Clock()
    fake_xai.rpm_limit = 2
    async with httpx.AsyncClient(transport=AsyncioTransport()) as http:
        grok = client(fake_xai, http)
        await grok.complete(ask())
        await grok.complete(ask())
        with pytest.raises(GrokRateLimited, match="Requests per Minute"):
            await grok.complete(ask())


async def test_budgets_are_per_model() -> None:
    clock = Clock()
    sleeps = Sleeps(clock)
    pacing = Pacing(rpm=1, budgets={"grok-3": Budget(rpm=2)}, clock=clock, sleep=sleeps)
    for model in ("grok-3", "grok-3", "grok-4.3"):
        async with pacing.slot(model):
            pass
    assert sleeps.delays == []
    async with pacing.slot("grok-4.3"):
        pass
    assert sleeps.delays == [pytest.approx(60.0, abs=0.01)]


async def test_tpm_budget_and_settling() -> None:
    clock = Clock()
    sleeps = Sleeps(clock)
    pacing = Pacing(tpm=1000, clock=clock, sleep=sleeps)
    async with pacing.slot("m", tokens=600) as permit:
        permit.settle(100)  # used far less than reserved: the rest goes back
    async with pacing.slot("m", tokens=600):
        pass
    assert sleeps.delays == []
    async with pacing.slot("m", tokens=600):
        pass
    assert sleeps.delays == [pytest.approx(60.0, abs=0.01)]  # when the second 600 expires


async def test_a_request_larger_than_the_tpm_budget_still_runs() -> None:
    clock = Clock()
    sleeps = Sleeps(clock)
    pacing = Pacing(tpm=100, clock=clock, sleep=sleeps)
    async with pacing.slot("m", tokens=10_000):
        pass
    assert sleeps.delays == []


async def test_a_request_counts_from_when_it_got_a_slot() -> None:
    clock = Clock()
    sleeps = Sleeps(clock)
    pacing = Pacing(concurrency=1, rpm=2, clock=clock, sleep=sleeps)
    release = asyncio.Event()

    async def first() -> None:
        async with pacing.slot("m"):
            await release.wait()

    async def second() -> float:
        async with pacing.slot("m"):
            return clock()

    holder = asyncio.create_task(first())
    await asyncio.sleep(0)
    waiter = asyncio.create_task(second())  # admitted by the budget, waits for the slot
    await asyncio.sleep(0)
    clock.t += 50
    release.set()
    await holder
    assert await waiter == clock.t
    async with pacing.slot("m"):  # the first expires at +60
        pass
    async with pacing.slot("m"):  # the second was sent at +50, so it expires at +110
        pass
    assert sleeps.delays == [pytest.approx(10, abs=0.01), pytest.approx(50, abs=0.01)]
