"""Streamed chat completions through GrokClient.stream over the fake's real SSE."""

from __future__ import annotations

import asyncio
import contextlib
from contextlib import aclosing
from typing import Any

import httpcore
import httpx
import pytest

from bot.errors import GrokStreamBroken, GrokUnavailable
from bot.grok import ContentDelta, GrokClient, ReasoningDelta, StreamEnd, StreamEvent, Timeouts
from bot.grok.net import AsyncioBackend, AsyncioTransport
from tests.fakes.xai import FakeXAI, Fault, ScriptedReply, fake_xai, grok  # noqa: F401
from tests.grok import ask, client, texts

LONG = "The quick brown fox jumps over the lazy dog; ünïcødé ✓ and `code`.\nNew line! " * 5


async def collect(grok: GrokClient, **fields: Any) -> list[StreamEvent]:
    async with aclosing(grok.stream(ask(**fields))) as events:
        return [event async for event in events]


async def test_streamed_text_equals_scripted_text(fake_xai: FakeXAI, grok: GrokClient) -> None:
    fake_xai.queue_reply(ScriptedReply(text=LONG, chunk_chars=3))
    events = await collect(grok)
    assert texts(events, ContentDelta) == LONG
    assert isinstance(events[-1], StreamEnd)
    assert sum(isinstance(e, StreamEnd) for e in events) == 1
    completion = events[-1].completion
    assert completion.text == LONG
    assert completion.finish_reason == "stop"
    assert completion.fingerprint == fake_xai.fingerprint
    assert completion.id.endswith("_us-east-1")
    assert completion.model == "grok-3"


async def test_request_asks_for_usage_chunk(fake_xai: FakeXAI, grok: GrokClient) -> None:
    await collect(grok)
    body = fake_xai.chat_requests()[-1].json
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert fake_xai.chat_requests()[-1].headers["accept"] == "text/event-stream"


async def test_reasoning_deltas_come_first(fake_xai: FakeXAI, grok: GrokClient) -> None:
    fake_xai.queue_reply(ScriptedReply(text="Answer.", reasoning="Let me think about it."))
    events = await collect(grok, model="grok-3-mini")
    kinds = [type(e) for e in events]
    first_content = kinds.index(ContentDelta)
    assert set(kinds[:first_content]) == {ReasoningDelta}
    assert ReasoningDelta not in kinds[first_content:]
    assert texts(events, ReasoningDelta) == "Let me think about it."
    end = events[-1]
    assert isinstance(end, StreamEnd)
    assert end.completion.reasoning == "Let me think about it."
    assert end.completion.text == "Answer."


async def test_empty_deltas_and_comments_are_skipped(fake_xai: FakeXAI, grok: GrokClient) -> None:
    fake_xai.queue_reply(ScriptedReply(text="abcdefgh", chunk_chars=2, empty_deltas=25, comments=7))
    events = await collect(grok)
    deltas = [e for e in events if isinstance(e, ContentDelta)]
    assert [d.text for d in deltas] == ["ab", "cd", "ef", "gh"]
    assert all(d.text for d in deltas)


async def test_usage_from_the_include_usage_chunk(fake_xai: FakeXAI, grok: GrokClient) -> None:
    fake_xai.queue_reply(ScriptedReply(text="x" * 40, reasoning="y" * 20, prompt_tokens=213))
    fake_xai.cached_tokens = 192
    events = await collect(grok, model="grok-3-mini")
    usage = events[-1].completion.usage  # type: ignore[union-attr]
    assert usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens, usage.reasoning_tokens) == (213, 10, 5)
    assert usage.cached_tokens == 192
    assert usage.total_tokens == 213 + 10 + 5


@pytest.mark.parametrize("include_chunk", [True, False])
async def test_running_usage_last_one_wins(fake_xai: FakeXAI, grok: GrokClient, include_chunk: bool) -> None:
    fake_xai.running_usage = True
    fake_xai.include_usage_chunk = include_chunk
    fake_xai.queue_reply(ScriptedReply(text="z" * 64, chunk_chars=4, cost_ticks=777))
    events = await collect(grok)
    usage = events[-1].completion.usage  # type: ignore[union-attr]
    assert usage is not None
    assert usage.completion_tokens == 16  # the final count, not the first chunk's running 1
    assert usage.cost_ticks == 777


async def test_no_usage_at_all_is_none(fake_xai: FakeXAI, grok: GrokClient) -> None:
    fake_xai.include_usage_chunk = False
    events = await collect(grok)
    assert events[-1].completion.usage is None  # type: ignore[union-attr]


@pytest.mark.parametrize("kind", ["cut", "malformed"])
async def test_broken_stream_keeps_partial_text(fake_xai: FakeXAI, grok: GrokClient, kind: str) -> None:
    fake_xai.queue_reply(ScriptedReply(text="abcdefghijkl", chunk_chars=4, fault=Fault(kind, 2)))  # type: ignore[arg-type]
    received: list[StreamEvent] = []
    with pytest.raises(GrokStreamBroken) as caught:
        async with aclosing(grok.stream(ask())) as events:
            async for event in events:
                received.append(event)
    assert caught.value.text == "abcdefgh"
    assert texts(received, ContentDelta) == "abcdefgh"
    assert len(fake_xai.chat_requests()) == 1  # never retried after content


async def test_broken_during_reasoning_keeps_reasoning(fake_xai: FakeXAI, grok: GrokClient) -> None:
    fake_xai.queue_reply(
        ScriptedReply(text="answer", reasoning="hmmhmm", chunk_chars=3, fault=Fault("cut", 1))
    )
    with pytest.raises(GrokStreamBroken) as caught:
        await collect(grok, model="grok-3-mini")
    assert (caught.value.reasoning, caught.value.text) == ("hmm", "")


async def test_cut_before_finish_is_broken(fake_xai: FakeXAI, grok: GrokClient) -> None:
    fake_xai.queue_reply(ScriptedReply(text="all of it", fault=Fault("cut", 99)))
    with pytest.raises(GrokStreamBroken) as caught:
        await collect(grok)
    assert caught.value.text == "all of it"


async def test_stall_times_out_as_broken(fake_xai: FakeXAI) -> None:
    fake_xai.queue_reply(ScriptedReply(text="abcdefgh", fault=Fault("stall", 1, stall_seconds=10)))
    async with httpx.AsyncClient(transport=AsyncioTransport()) as http:
        grok = client(fake_xai, http, timeouts=Timeouts(stream_read=0.3))
        with pytest.raises(GrokStreamBroken) as caught:
            await collect(grok)
    assert caught.value.text == "abcd"
    assert "stall" in str(caught.value)
    assert len(fake_xai.chat_requests()) == 1


async def test_non_streamed_read_timeout_is_unavailable(fake_xai: FakeXAI) -> None:
    fake_xai.queue_reply(ScriptedReply(text="late", first_token_delay=5))
    async with httpx.AsyncClient(transport=AsyncioTransport()) as http:
        grok = client(fake_xai, http, timeouts=Timeouts(read=0.3))
        with pytest.raises(GrokUnavailable):
            await grok.complete(ask())
    assert len(fake_xai.chat_requests()) == 1  # a read timeout is not resent (it may be billed)


async def test_stream_retries_before_content(fake_xai: FakeXAI, grok: GrokClient) -> None:
    fake_xai.fail_next(503, times=1)
    fake_xai.fail_next(429, times=1)
    fake_xai.queue_reply(ScriptedReply(text="finally"))
    events = await collect(grok)
    assert texts(events, ContentDelta) == "finally"
    assert len(fake_xai.chat_requests()) == 3


async def test_abandoned_stream_releases_its_slot(fake_xai: FakeXAI, grok: GrokClient) -> None:
    fake_xai.queue_reply(ScriptedReply(text="a" * 400))
    async with aclosing(grok.stream(ask())) as events:
        async for _event in events:
            break
    assert grok.pacing.in_flight == 0
    assert texts(await collect(grok), ContentDelta).startswith("Echo: ")


async def test_a_200_that_is_not_an_event_stream_is_broken(fake_xai: FakeXAI, grok: GrokClient) -> None:
    fake_xai.fail_next(200, body={"id": "x", "choices": []})
    with pytest.raises(GrokStreamBroken, match="not an event stream"):
        await collect(grok)


async def test_streams_reuse_their_connection_and_stop_gathering(
    fake_xai: FakeXAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After [DONE] the client reads to the response's end, so the connection goes back to the
    pool (no new TCP and TLS handshake per answer), and it no longer gathers reads: with a minute
    of gathering left on, the next call on it would wait a minute."""
    opened = 0
    connect = AsyncioBackend.connect_tcp

    async def counting(self: AsyncioBackend, *args: Any, **kwargs: Any) -> httpcore.AsyncNetworkStream:
        nonlocal opened
        opened += 1
        return await connect(self, *args, **kwargs)

    monkeypatch.setattr(AsyncioBackend, "connect_tcp", counting)
    fake_xai.default_reply = ScriptedReply(
        text="one two three four five", chunk_chars=3, tokens_per_second=300
    )
    async with httpx.AsyncClient(transport=AsyncioTransport()) as http:
        grok = client(fake_xai, http, read_gather_s=60.0)
        for _ in range(2):
            events = [event async for event in grok.stream(ask())]
            assert isinstance(events[-1], StreamEnd)
            assert events[-1].completion.text == "one two three four five"
        # A reader that stops at StreamEnd and closes the stream (as the engine does) too.
        async with contextlib.aclosing(grok.stream(ask())) as stream:
            async for event in stream:
                if isinstance(event, StreamEnd):
                    break
        completion = await asyncio.wait_for(grok.complete(ask()), 10.0)
    assert completion.text == "one two three four five"
    assert opened == 1
