"""Two instances behind one Slack app on one PostgreSQL database (issue 15, part 2): each paces at
its share of Slack's limits, so that together they stay within them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.db import create_engine, session_factory
from bot.engine import utc_now
from bot.grok import GrokClient
from bot.jobs import Notices, RateLease
from tests.adapters.slack.conftest import ANA, BO, Stack, build_stack
from tests.fakes.slack import FakeSlack
from tests.fakes.xai import FakeXAI, ScriptedReply

ANSWER = "One continuous answer, streamed in small pieces to a busy workspace. " * 3


@pytest.fixture
async def shared_db(postgres_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(postgres_url)
    try:
        yield engine
    finally:
        await engine.dispose()


async def test_two_instances_share_slacks_limits_and_a_40_mention_burst_draws_no_429(
    fake_slack: FakeSlack, fake_xai: FakeXAI, grok: GrokClient, shared_db: AsyncEngine
) -> None:
    sessions = session_factory(shared_db)
    channels = [fake_slack.add_channel(f"C0BURST{i:02d}", f"burst-{i}").id for i in range(10)]
    stacks: list[Stack] = []
    leases: list[RateLease] = []
    notices: list[Notices] = []
    try:
        for n in range(2):
            stack, _ = await build_stack(fake_slack, fake_xai, grok, sessions)
            stacks.append(stack)
            stack.engine.shares.subscribe(stack.adapter.api.pacer.set_share)
            heard = Notices(shared_db, instance_id=f"instance-{n}")
            lease = RateLease(
                sessions, stack.engine.shares, instance_id=f"instance-{n}", clock=utc_now, notices=heard
            )
            heard.start()
            await heard.listening()
            notices.append(heard)
            leases.append(lease)
            await lease.start()
        # The second instance's notice reached the first: both pace at half of every limit.
        halved = asyncio.Event()
        stacks[0].engine.shares.subscribe(lambda share: halved.set() if share == 0.5 else None)
        await halved.wait()
        assert [s.adapter.api.pacer.share for s in stacks] == [0.5, 0.5]
        assert [s.engine.budgets.share for s in stacks] == [0.5, 0.5]

        fake_xai.default_reply = ScriptedReply(text=ANSWER, tokens_per_second=200, chunk_chars=4)

        async def mention(i: int) -> Any:
            # Mentions 0-9 to the first instance, 10-19 to the second, ...: each channel is
            # answered by both, so its per-channel posting limit is shared too.
            stack = stacks[(i // 10) % 2]
            users = (ANA, BO)
            return await stack.sender.mention(channels[i % 10], users[i % 2], f"question {i}")

        mentions = await asyncio.gather(*(mention(i) for i in range(40)))
        await asyncio.gather(*(s.settle(within=120) for s in stacks))

        assert fake_slack.rate_limited == 0
        for message, _ in mentions:
            parts = fake_slack.bot_messages(message.channel, thread_ts=message.ts)
            assert [p.content for p in parts] == [ANSWER]  # whole, in one message, no notice
    finally:
        for lease in leases:
            await lease.stop()
        for heard in notices:
            await heard.stop()
        for stack in stacks:
            await stack.web.stop()
            await stack.adapter.stop()
