"""Streaming answers into Slack: native streams, their fallbacks, long answers, failures, bursts."""

from __future__ import annotations

import asyncio
import random

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from sqlmodel import col, select

from bot.conversation import estimate_tokens
from bot.grok import Usage
from bot.platform import Capabilities
from bot.tables import Turn, UsageEvent
from tests.adapters.slack.conftest import ANA, BO, GENERAL, RANDOM, Stack, StackFactory
from tests.fakes.slack import BOT_TOKEN, FakeSlack
from tests.fakes.xai import Fault, ScriptedReply


def paragraphs(count: int, *, seed: int = 7) -> str:
    words = ["grok", "slack", "stream", "token", "answer", "thread", "budget", "message", "edit", "split"]
    rng = random.Random(seed)
    parts = []
    for index in range(count):
        body = " ".join(rng.choice(words) for _ in range(rng.randint(20, 60)))
        parts.append(f"Paragraph {index}: {body}.")
        if index % 7 == 3:
            parts.append("```python\n" + "\n".join(f"x_{i} = {i} * 2" for i in range(12)) + "\n```")
    return "\n\n".join(parts)


async def test_a_long_answer_continues_in_the_thread_without_losing_text(stack: Stack) -> None:
    answer = paragraphs(52)  # within the engine's 4,096-token answer cap, over one Slack message
    assert 11_000 < len(answer) < 16_000
    stack.xai.queue_reply(ScriptedReply(text=answer, tokens_per_second=8000, chunk_chars=12))
    message, _ = await stack.sender.mention(GENERAL, ANA, "write a lot")
    await stack.settle()
    parts = stack.answers(GENERAL, message.ts)
    assert len(parts) >= 2
    assert all(len(p.content) <= 11_000 for p in parts)
    assert not any(p.streaming for p in parts)
    # The engine closes and reopens code fences at splits; the parts hold every character in order.
    joined = "".join(p.content for p in parts)
    assert joined.replace("\n```\n```python\n", "\n").replace("```\n```python\n", "") == answer
    assert any(b["type"] == "context_actions" for b in parts[-1].blocks)


async def test_msg_too_long_continues_in_a_new_message(stack: Stack, fake_slack: FakeSlack) -> None:
    fake_slack.stream_limit = 1_500  # Slack refuses streamed messages past this
    answer = paragraphs(11, seed=3)
    stack.xai.queue_reply(ScriptedReply(text=answer, tokens_per_second=3000, chunk_chars=10))
    message, _ = await stack.sender.mention(GENERAL, ANA, "long please")
    await stack.settle()
    parts = stack.answers(GENERAL, message.ts)
    assert len(parts) >= 2  # how many depends on whether the rest is streamed again or posted
    assert "".join(p.content for p in parts) == answer
    assert not any(p.streaming for p in parts)
    assert any(c.error == "msg_too_long" for c in fake_slack.calls)
    streamed = [p for p in parts if p.stream_started]
    assert streamed
    assert all(len(p.content) <= fake_slack.stream_limit for p in streamed)


async def test_an_expired_stream_falls_back_to_chat_update(stack: Stack, fake_slack: FakeSlack) -> None:
    answer = paragraphs(6, seed=5)
    stack.xai.queue_reply(ScriptedReply(text=answer, tokens_per_second=600, chunk_chars=8))
    message, _ = await stack.sender.mention(GENERAL, ANA, "stream then expire")
    await fake_slack.wait_until(lambda: fake_slack.bot_messages(GENERAL))
    fake_slack.expire_streams()
    await stack.settle()
    [part] = stack.answers(GENERAL, message.ts)
    assert part.content == answer
    assert any(c.error == "message_not_in_streaming_state" for c in fake_slack.calls)
    assert fake_slack.calls_to("chat.update")


async def test_a_failed_answer_keeps_the_text_and_says_what_happened(stack: Stack) -> None:
    text = "First part of the answer. " * 20
    stack.xai.queue_reply(
        ScriptedReply(text=text, tokens_per_second=400, chunk_chars=5, fault=Fault("cut", after_chunks=60))
    )
    message, _ = await stack.sender.mention(GENERAL, ANA, "this will break")
    await stack.settle()
    [part] = stack.answers(GENERAL, message.ts)
    shown = part.content
    assert shown.startswith("First part of the answer.")
    assert "⚠️" in shown
    assert not part.streaming


async def test_without_native_streams_answers_are_edited(stack: Stack, fake_slack: FakeSlack) -> None:
    fake_slack.fail["chat.startStream"].append("unknown_method")
    answer = "Edited, not streamed. " * 30
    stack.xai.queue_reply(ScriptedReply(text=answer, tokens_per_second=300, chunk_chars=6))
    message, _ = await stack.sender.mention(GENERAL, ANA, "hello")
    await stack.settle()
    [part] = stack.answers(GENERAL, message.ts)
    assert part.content == answer
    # Slack offers this workspace no streams: that is the workspace's state, and the capabilities say so.
    assert not stack.adapter.platform.streams.offered(fake_slack.team_id)
    assert not stack.adapter.platform.capabilities.native_streaming
    assert fake_slack.calls_to("chat.update")
    # Once refused as unknown, streams are not tried again.
    stack.xai.queue_reply(ScriptedReply(text="Again."))
    await stack.sender.mention(GENERAL, BO, "again")
    await stack.settle()
    assert len([c for c in fake_slack.calls if c.method == "chat.startStream"]) == 1


async def test_twenty_simultaneous_answers_draw_no_429(
    make_stack: StackFactory, fake_slack: FakeSlack
) -> None:
    # The engine's own budget is opened wide here, so Slack's limits are kept by the adapter's pacer alone.
    wide = Capabilities(11_000, 1.0, True, 1 << 30, scope_edits_per_minute=10_000, scope_burst=1_000)
    stack = await make_stack(capabilities=wide)
    channels = [GENERAL, RANDOM, "C0THREE00", "C0FOUR000", "C0FIVE000"]
    for channel in channels[2:]:
        fake_slack.add_channel(channel)
    stack.xai.default_reply = ScriptedReply(
        text="A short streamed answer with a few words. " * 4, tokens_per_second=60
    )
    mentions = await asyncio.gather(
        *(stack.sender.mention(channels[i % 5], ANA if i % 2 else BO, f"question {i}") for i in range(20))
    )
    await stack.settle(within=60)
    assert fake_slack.rate_limited == 0
    assert stack.adapter.api.rate_limited == 0
    for message, _ in mentions:
        [part] = stack.answers(message.channel, message.ts)
        assert part.content == "A short streamed answer with a few words. " * 4


async def test_a_long_slash_command_answer_is_edited_and_split(stack: Stack, fake_slack: FakeSlack) -> None:
    answer = paragraphs(50, seed=11)
    assert 11_000 < len(answer) < 16_000
    stack.xai.queue_reply(ScriptedReply(text=answer, tokens_per_second=8000, chunk_chars=12))
    await stack.sender.command("write a long essay", user=ANA, channel=GENERAL)
    await stack.settle()
    parts = fake_slack.bot_messages(GENERAL)
    assert len(parts) == 2
    joined = "".join(p.content for p in parts)
    assert joined.replace("\n```\n```python\n", "\n").replace("```\n```python\n", "") == answer
    assert parts[1].thread_ts == ""  # top-level, following the first part
    assert fake_slack.calls_to("chat.update") and not fake_slack.calls_to("chat.startStream")
    assert "▍" not in joined


@pytest.mark.parametrize("method", ["chat.startStream", "chat.stopStream"])
async def test_a_busy_workspace_answers_with_edits_instead_of_streams(
    stack: Stack, fake_slack: FakeSlack, method: str
) -> None:
    # Every stream starts with a chat.startStream and ends with a chat.stopStream, both Tier 2
    # (20 a minute per workspace): with either used up this minute, an answer is posted and
    # edited instead of queueing (or drawing a 429) for a stream.
    pacer = stack.adapter.api.pacer
    while pacer.try_acquire(method, fake_slack.team_id):
        pass
    answer = "Posted and edited, since no stream could start. " * 12
    stack.xai.queue_reply(ScriptedReply(text=answer, tokens_per_second=300, chunk_chars=6))
    message, _ = await stack.sender.mention(GENERAL, ANA, "hello")
    await stack.settle()
    assert [m.content for m in stack.answers(GENERAL, message.ts)] == [answer]
    assert not fake_slack.calls_to("chat.startStream")
    assert fake_slack.calls_to("chat.update")
    assert fake_slack.rate_limited == 0
    assert stack.adapter.platform.streams.offered(fake_slack.team_id)  # streaming once the budget is back


async def test_msg_too_long_on_edited_answers_continues_too(stack: Stack, fake_slack: FakeSlack) -> None:
    fake_slack.markdown_limit = 1_500  # a Slack stricter than documented
    answer = paragraphs(9, seed=9)
    stack.xai.queue_reply(ScriptedReply(text=answer, tokens_per_second=4000, chunk_chars=10))
    await stack.sender.command("a long one", user=ANA, channel=GENERAL)
    await stack.settle()
    parts = fake_slack.bot_messages(GENERAL)
    # How many parts depends on when Slack first refuses, not on the text: at least two, each
    # within the stricter limit, and nothing lost.
    assert len(parts) >= 2
    assert all(len(p.content) <= 1_500 for p in parts)
    assert "".join(p.content for p in parts) == answer
    assert any(b["type"] == "context_actions" for b in parts[-1].blocks)


async def test_the_fake_holds_stream_starts_to_tier_2(fake_slack: FakeSlack) -> None:
    channels = [f"C0TIER2{index:02d}" for index in range(21)]  # one start each: no posting limit
    for channel in channels:
        fake_slack.add_channel(channel)
    client = AsyncWebClient(token=BOT_TOKEN, base_url=fake_slack.api_url)
    statuses = []
    for channel in channels:
        try:
            await client.chat_startStream(
                channel=channel,
                thread_ts="1700000000.000100",
                recipient_user_id=ANA,
                recipient_team_id=fake_slack.team_id,
            )
            statuses.append(200)
        except SlackApiError as exc:
            statuses.append(exc.response.status_code)
    assert statuses == [200] * 20 + [429]


async def test_a_stream_stopped_in_slack_ends_the_answer_there(stack: Stack, fake_slack: FakeSlack) -> None:
    answer = paragraphs(12, seed=3)
    stack.xai.queue_reply(ScriptedReply(text=answer, tokens_per_second=80, chunk_chars=6))
    message, _ = await stack.sender.mention(GENERAL, ANA, "a long story, please")

    def streaming_a_while() -> bool:
        parts = stack.answers(GENERAL, message.ts)
        return bool(parts) and parts[0].streaming and len(parts[0].content) > 40

    await fake_slack.wait_until(streaming_a_while)
    [part] = stack.answers(GENERAL, message.ts)
    fake_slack.stop_by_user(GENERAL, part.ts)
    shown = part.content
    await stack.settle()
    [part] = stack.answers(GENERAL, message.ts)
    # Nothing more is shown: no rest of the answer, no warning, no feedback buttons, no rewrite.
    assert part.content == shown and answer.startswith(shown) and len(shown) < len(answer)
    assert not part.blocks and not fake_slack.calls_to("chat.update")
    refused = [c.method for c in fake_slack.calls if c.error == "stopped_by_user"]
    assert refused == ["chat.appendStream"]  # the first refusal ended the answer
    await stack.xai.stream_cut.wait()  # the fake notices at its next write
    assert stack.xai.streams_cut == 1  # Grok's stream was closed, which stops the generation
    async with stack.engine.sessions() as session:
        [turn] = (await session.exec(select(Turn).where(col(Turn.role) == "assistant"))).all()
        [event] = (await session.exec(select(UsageEvent))).all()
    assert turn.finish_reason == "stopped" and turn.text == shown
    # Charged for what Grok generated before the stop: more than nothing, less than the whole answer.
    full = stack.engine.grok.prices.cost_ticks(
        event.model, Usage(prompt_tokens=event.prompt_tokens, completion_tokens=estimate_tokens(answer))
    )
    assert 0 < event.cost_ticks < full
    assert event.completion_tokens >= estimate_tokens(shown)
