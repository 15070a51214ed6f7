"""Streamed Responses API answers through GrokClient.stream_response over the fake's real SSE:
text, reasoning summaries, tool calls, citations, usage and cost, framings, keep-alives, faults."""

from __future__ import annotations

import asyncio
import contextlib
from contextlib import aclosing
from typing import Any

import httpx
import pytest

from bot.errors import GrokStreamBroken, GrokUnavailable
from bot.grok import (
    Completion,
    ContentDelta,
    GrokClient,
    ReasoningDelta,
    ResponseRequest,
    StreamEnd,
    StreamEvent,
    Timeouts,
    ToolCallDone,
    ToolCallStarted,
    Tools,
    WebSearch,
    XSearch,
)
from bot.grok.net import AsyncioTransport
from tests.fakes.xai import (
    FakeXAI,
    Fault,
    ScriptedCitation,
    ScriptedResponse,
    ScriptedTool,
    fake_xai,  # noqa: F401
    grok,  # noqa: F401
)
from tests.grok import ask_response, client, texts

SEARCH = Tools(web=WebSearch(), x=XSearch())
LONG = "Grok looked it up: the answer, with ünïcødé ✓ and `code`.\nNew line! " * 4


async def collect(grok: GrokClient, request: ResponseRequest | None = None) -> list[StreamEvent]:
    async with aclosing(grok.stream_response(request or ask_response())) as events:
        return [event async for event in events]


def end(events: list[StreamEvent]) -> Completion:
    assert sum(isinstance(e, StreamEnd) for e in events) == 1
    last = events[-1]
    assert isinstance(last, StreamEnd)
    return last.completion


async def test_streamed_text_equals_scripted_text(fake_xai: FakeXAI, grok: GrokClient) -> None:
    fake_xai.queue_response(ScriptedResponse(text=LONG, chunk_chars=3))
    events = await collect(grok)
    assert texts(events, ContentDelta) == LONG
    completion = end(events)
    assert (completion.text, completion.finish_reason, completion.model) == (LONG, "stop", "grok-4.3")
    assert completion.fingerprint == fake_xai.fingerprint
    assert len(completion.id) == 36  # a bare UUID, never resp_...
    assert (completion.citations, completion.sources, completion.tool_calls) == ((), (), ())


async def test_reasoning_summary_streams_first_and_encrypted_reasoning_is_never_kept(
    fake_xai: FakeXAI, grok: GrokClient
) -> None:
    fake_xai.queue_response(ScriptedResponse(text="Answer.", reasoning="Let me think about it."))
    events = await collect(grok)
    kinds = [type(e) for e in events]
    first_text = kinds.index(ContentDelta)
    assert set(kinds[:first_text]) == {ReasoningDelta}
    assert texts(events, ReasoningDelta) == "Let me think about it."
    completion = end(events)
    assert (completion.reasoning, completion.text) == ("Let me think about it.", "Answer.")
    sent = fake_xai.responses_requests()[-1].json
    assert sent["store"] is False  # so the fake, like xAI, adds encrypted_content to the reasoning item
    assert "encrypted_content" not in repr(completion) and "==" not in repr(completion)


async def test_a_web_search_starts_then_ends_with_its_query_and_sources(
    fake_xai: FakeXAI, grok: GrokClient
) -> None:
    sources = ("https://x.ai/", "https://x.ai/news", "https://x.ai/")
    fake_xai.queue_response(
        ScriptedResponse(text="Found.", tools=(ScriptedTool("web", "xai news", sources),))
    )
    events = await collect(grok, ask_response(tools=SEARCH))
    started, done = [e for e in events if isinstance(e, ToolCallStarted | ToolCallDone)]
    assert isinstance(started, ToolCallStarted) and isinstance(done, ToolCallDone)
    assert (started.call.kind, started.call.status, started.call.query) == ("web", "in_progress", "")
    assert done.call.id == started.call.id and done.call.id.startswith("ws_")
    assert (done.call.status, done.call.name, done.call.query) == ("completed", "web_search", "xai news")
    assert done.call.sources == ("https://x.ai/", "https://x.ai/news")  # without duplicates
    assert events.index(done) < next(i for i, e in enumerate(events) if isinstance(e, ContentDelta))
    assert end(events).tool_calls == (done.call,)


async def test_an_x_search_shows_its_query_once_known(fake_xai: FakeXAI, grok: GrokClient) -> None:
    fake_xai.queue_response(ScriptedResponse(tools=(ScriptedTool("x", "from:xai grok"),)))
    events = await collect(grok, ask_response(tools=SEARCH))
    calls = [e for e in events if isinstance(e, ToolCallStarted | ToolCallDone)]
    assert [type(e) for e in calls] == [ToolCallStarted, ToolCallStarted, ToolCallDone]
    assert [e.call.query for e in calls] == ["", "from:xai grok", "from:xai grok"]
    assert {e.call.id for e in calls} == {calls[0].call.id}
    assert (calls[-1].call.kind, calls[-1].call.name) == ("x", "x_keyword_search")


async def test_code_execution_shows_its_code_and_output(fake_xai: FakeXAI, grok: GrokClient) -> None:
    fake_xai.queue_response(
        ScriptedResponse(text="323", tools=(ScriptedTool("code", "print(17*19)", output="323\n"),))
    )
    events = await collect(grok, ask_response(tools=Tools(code=True)))
    calls = [e.call for e in events if isinstance(e, ToolCallStarted | ToolCallDone)]
    assert [c.code for c in calls] == ["", "print(17*19)", "print(17*19)"]
    done = calls[-1]
    assert (done.kind, done.status, done.name) == ("code", "completed", "code_execution")
    assert [(o.kind, o.text) for o in done.outputs] == [("logs", "323\n")]


async def test_parallel_calls_ending_out_of_order_are_kept_apart(fake_xai: FakeXAI, grok: GrokClient) -> None:
    tools = tuple(ScriptedTool("web", f"query {n}", (f"https://example.com/{n}",)) for n in range(4))
    fake_xai.queue_response(ScriptedResponse(tools=tools, parallel=True))
    events = await collect(grok, ask_response(tools=SEARCH))
    started = [e.call for e in events if isinstance(e, ToolCallStarted)]
    done = [e.call for e in events if isinstance(e, ToolCallDone)]
    assert [c.id for c in done] == [c.id for c in reversed(started)]
    assert [(c.query, c.sources) for c in done] == [
        (f"query {n}", (f"https://example.com/{n}",)) for n in (3, 2, 1, 0)
    ]
    assert [c.query for c in end(events).tool_calls] == [
        f"query {n}" for n in range(4)
    ]  # first started first


async def test_citations_in_order_without_duplicates_titled_where_known(
    fake_xai: FakeXAI, grok: GrokClient
) -> None:
    text = "Grok [[1]](https://x.ai/) and docs [[2]](https://docs.x.ai/) and again [[1]](https://x.ai/)."
    citations = (
        ScriptedCitation("https://x.ai/", marker=True),
        ScriptedCitation("https://docs.x.ai/", title="xAI docs", marker=True),
        ScriptedCitation("https://x.ai/", title="xAI", marker=True),
    )
    fake_xai.queue_response(
        ScriptedResponse(text=text, citations=citations, tools=(ScriptedTool("web", "xai"),))
    )
    completion = end(await collect(grok, ask_response(tools=SEARCH)))
    assert [c.url for c in completion.citations] == ["https://x.ai/", "https://docs.x.ai/", "https://x.ai/"]
    first = completion.citations[0]
    assert first.title is None  # xAI repeated the URL as the title
    assert first.start is not None and text[first.start : first.end] == "[[1]](https://x.ai/)"
    assert [(s.url, s.title, s.cited) for s in completion.sources] == [
        ("https://x.ai/", "xAI", True),  # the title a later citation of it knew
        ("https://docs.x.ai/", "xAI docs", True),
    ]


async def test_citations_without_markers_keep_no_offsets(fake_xai: FakeXAI, grok: GrokClient) -> None:
    citations = (ScriptedCitation("https://b.example/"), ScriptedCitation("https://a.example/", title="7"))
    fake_xai.queue_response(ScriptedResponse(text="Plain.", citations=citations))
    completion = end(await collect(grok))
    assert [(c.url, c.title, c.start, c.end) for c in completion.citations] == [
        ("https://b.example/", None, None, None),
        ("https://a.example/", None, None, None),  # a bare number is a marker, not a title
    ]
    assert [s.url for s in completion.sources] == ["https://b.example/", "https://a.example/"]


async def test_uncited_search_sources_are_the_fallback(fake_xai: FakeXAI, grok: GrokClient) -> None:
    tools = (ScriptedTool("web", "a", ("https://a.example/", "https://b.example/")),
             ScriptedTool("web", "b", ("https://b.example/", "https://c.example/")))  # fmt: skip
    fake_xai.queue_response(ScriptedResponse(text="Unsourced.", tools=tools))
    completion = end(await collect(grok, ask_response(tools=SEARCH)))
    assert [(s.url, s.cited) for s in completion.sources] == [
        ("https://a.example/", False), ("https://b.example/", False), ("https://c.example/", False)
    ]  # fmt: skip


async def test_usage_with_tools_and_the_charge_equals_cost_in_usd_ticks(
    fake_xai: FakeXAI, grok: GrokClient
) -> None:
    tools = (
        ScriptedTool("web", "a"),
        ScriptedTool("x", "b", posts=12),
        ScriptedTool("code", "1", status="failed"),
    )
    fake_xai.queue_response(
        ScriptedResponse(text="x" * 40, reasoning="y" * 20, tools=tools, prompt_tokens=100)
    )
    completion = end(await collect(grok, ask_response(tools=Tools(web=WebSearch(), x=XSearch(), code=True))))
    usage = completion.usage
    assert usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens, usage.reasoning_tokens) == (400, 10, 5)
    assert usage.total_tokens == 400 + 15
    assert (usage.tools.web_search_calls, usage.tools.x_search_calls, usage.tools.code_interpreter_calls) == (
        1,
        1,
        0,
    )
    assert usage.tools.x_posts_fetched == 12
    assert usage.cost_ticks is not None
    assert grok.prices.cost_ticks(completion.model, usage) == usage.cost_ticks
    fake_xai.report_cost = False  # then computed: tokens at grok-4.3 rates + the billed tool calls
    fake_xai.queue_response(
        ScriptedResponse(text="x" * 40, reasoning="y" * 20, tools=tools, prompt_tokens=100)
    )
    unreported = end(await collect(grok, ask_response(tools=Tools(web=WebSearch(), x=XSearch(), code=True))))
    assert unreported.usage is not None and unreported.usage.cost_ticks is None
    assert grok.prices.cost_ticks(unreported.model, unreported.usage) == usage.cost_ticks


@pytest.mark.parametrize("event_lines", [False, True])
@pytest.mark.parametrize("done_marker", [False, True])
async def test_both_framings_with_and_without_done(
    fake_xai: FakeXAI, grok: GrokClient, event_lines: bool, done_marker: bool
) -> None:
    fake_xai.queue_response(
        ScriptedResponse(text=LONG, reasoning="hm", tools=(ScriptedTool("web", "q", ("https://a.example/",)),),
                         event_lines=event_lines, done_marker=done_marker)
    )  # fmt: skip
    events = await collect(grok, ask_response(tools=SEARCH))
    completion = end(events)
    assert (completion.text, completion.reasoning) == (LONG, "hm")
    assert [c.query for c in completion.tool_calls] == ["q"]


async def test_unknown_event_and_item_types_are_ignored(fake_xai: FakeXAI, grok: GrokClient) -> None:
    fake_xai.queue_response(ScriptedResponse(text="Still here.", unknown_events=True, keepalive_events=True))
    events = await collect(grok)
    assert [type(e) for e in events if not isinstance(e, ContentDelta)] == [StreamEnd]
    assert end(events).text == "Still here."


async def test_an_x_search_of_40_s_with_keep_alives_completes(fake_xai: FakeXAI) -> None:
    """A 40 s X search sends nothing but keep-alives every 15 s. The fake runs it at a
    hundredth of the speed, and the client's idle limit is scaled alike (30 s): shorter than the
    search, longer than the keep-alive interval. The keep-alives keep it open."""
    fake_xai.time_scale = 0.01
    reply = ScriptedResponse(text="Posts say yes.", tools=(ScriptedTool("x", "is it true", seconds=40),))
    fake_xai.queue_response(reply)
    async with httpx.AsyncClient(transport=AsyncioTransport()) as http:
        grok = client(fake_xai, http, timeouts=Timeouts(stream_read=30 * 0.01))
        completion = end(await collect(grok, ask_response(tools=SEARCH)))
        assert completion.text == "Posts say yes."
        assert fake_xai.keepalives_sent == 2  # at 15 s and 30 s
        fake_xai.queue_response(ScriptedResponse(tools=reply.tools, keepalive_s=0))  # the control
        with pytest.raises(GrokStreamBroken, match="stall"):
            await collect(grok, ask_response(tools=SEARCH))


def test_the_default_idle_limit_outlasts_a_quiet_x_search() -> None:
    # 45 s searches with keep-alives every 15 s (85 s without any event was measured): minutes.
    assert Timeouts().stream_read >= 90


async def stream_until(events: Any, kind: type[StreamEvent]) -> StreamEvent:
    async for event in events:
        if isinstance(event, kind):
            return event  # type: ignore[no-any-return]
    raise AssertionError(f"no {kind.__name__}")


async def test_gathered_reads_never_hold_back_a_tool_call_or_the_first_words(fake_xai: FakeXAI) -> None:
    """While the reasoning summary streams, reads gather (here for a minute); a new output item
    (the search, then the answer) still comes through at once."""
    reply = ScriptedResponse(text="Answer.", reasoning="r" * 40, chunk_chars=1, tokens_per_second=200,
                             tools=(ScriptedTool("web", "q", seconds=20),))  # fmt: skip
    fake_xai.time_scale = 0.01
    fake_xai.queue_response(reply)
    async with httpx.AsyncClient(transport=AsyncioTransport()) as http:
        grok = client(fake_xai, http, read_gather_s=60.0)
        async with aclosing(grok.stream_response(ask_response(tools=SEARCH))) as events:
            await asyncio.wait_for(stream_until(events, ReasoningDelta), 10)
            started = await asyncio.wait_for(stream_until(events, ToolCallStarted), 10)
            assert started.call.kind == "web"  # type: ignore[attr-defined]
            await asyncio.wait_for(stream_until(events, ToolCallDone), 10)
            first = await asyncio.wait_for(stream_until(events, ContentDelta), 10)
            assert first.text == "A"  # type: ignore[attr-defined]


async def test_an_incomplete_answer_ends_with_length(fake_xai: FakeXAI, grok: GrokClient) -> None:
    fake_xai.queue_response(ScriptedResponse(text="Cut short", end="incomplete"))
    completion = end(await collect(grok, ask_response(max_output_tokens=16)))
    assert (completion.text, completion.finish_reason) == ("Cut short", "length")


async def test_an_error_event_before_any_text_is_unavailable(fake_xai: FakeXAI, grok: GrokClient) -> None:
    fake_xai.queue_response(ScriptedResponse(stream_error="Invalid arguments passed to the model."))
    with pytest.raises(GrokUnavailable, match="Invalid arguments passed to the model"):
        await collect(grok)
    assert len(fake_xai.responses_requests()) == 1  # a 200 with an error is not resent


async def test_an_error_event_after_text_is_broken_with_the_text(fake_xai: FakeXAI, grok: GrokClient) -> None:
    fake_xai.queue_response(ScriptedResponse(text="abcdefgh", stream_error="overloaded", error_after=1))
    with pytest.raises(GrokStreamBroken, match="overloaded") as caught:
        await collect(grok)
    assert caught.value.text == "abcd"


async def test_a_failed_response_is_an_error(fake_xai: FakeXAI, grok: GrokClient) -> None:
    fake_xai.queue_response(ScriptedResponse(text="partial", end="failed"))
    with pytest.raises(GrokStreamBroken, match="The model failed to respond") as caught:
        await collect(grok)
    assert caught.value.text == "partial"


@pytest.mark.parametrize("kind", ["cut", "malformed"])
async def test_broken_stream_keeps_partial_text(fake_xai: FakeXAI, grok: GrokClient, kind: str) -> None:
    fake_xai.queue_response(ScriptedResponse(text="abcdefghijkl", fault=Fault(kind, 2)))  # type: ignore[arg-type]
    received: list[StreamEvent] = []
    with pytest.raises(GrokStreamBroken) as caught:
        async with aclosing(grok.stream_response(ask_response())) as events:
            async for event in events:
                received.append(event)
    assert caught.value.text == "abcdefgh" == texts(received, ContentDelta)
    assert len(fake_xai.responses_requests()) == 1  # never retried after content


async def test_an_end_without_the_end_event_is_broken(fake_xai: FakeXAI, grok: GrokClient) -> None:
    fake_xai.queue_response(ScriptedResponse(text="all of it", fault=Fault("cut", 99)))
    with pytest.raises(GrokStreamBroken, match="cut connection") as caught:
        await collect(grok)
    assert caught.value.text == "all of it"
    whole_but_no_end = b'data: {"type":"response.output_text.delta","delta":"all of it"}\n\ndata: [DONE]\n\n'
    fake_xai.queue_response(ScriptedResponse(raw=whole_but_no_end))
    with pytest.raises(GrokStreamBroken, match=r"without response\.completed") as caught:
        await collect(grok)
    assert caught.value.text == "all of it"


async def test_stream_retries_before_content(fake_xai: FakeXAI, grok: GrokClient) -> None:
    fake_xai.fail_next(503, times=1)
    fake_xai.fail_next(429, times=1)
    fake_xai.queue_response(ScriptedResponse(text="finally"))
    assert end(await collect(grok)).text == "finally"
    assert len(fake_xai.responses_requests()) == 3


async def test_abandoned_stream_releases_its_slot_and_the_connection_is_reused(fake_xai: FakeXAI) -> None:
    fake_xai.default_response = ScriptedResponse(text="one two three four", tokens_per_second=500)
    async with httpx.AsyncClient(transport=AsyncioTransport()) as http:
        grok = client(fake_xai, http, read_gather_s=60.0)
        async with aclosing(grok.stream_response(ask_response())) as events:
            async for _event in events:
                break
        assert grok.pacing.in_flight == 0
        for _ in range(2):
            async with contextlib.aclosing(grok.stream_response(ask_response())) as stream:
                await asyncio.wait_for(stream_until(stream, StreamEnd), 10)
        completion = await asyncio.wait_for(grok.respond(ask_response()), 10)
    assert completion.text == "one two three four"
