"""The client against real xAI answers, recorded by the Vercel AI SDK (tests/grok/recordings/README.md):
served byte for byte by the fake, framed as the SDK's tests frame them (and with `event:` lines,
without `[DONE]`, split into single bytes), the client must read what the recording says."""

from __future__ import annotations

import json
from contextlib import aclosing
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from bot.grok import (
    Completion,
    ContentDelta,
    GrokClient,
    PriceBook,
    ReasoningDelta,
    StreamEnd,
    StreamEvent,
    ToolCallDone,
    ToolCallStarted,
)
from bot.grok.events import ResponseReading
from bot.grok.outputs import response_usage
from bot.grok.sse import EventData
from tests.fakes.xai import FakeXAI, ScriptedResponse, fake_xai, grok  # noqa: F401
from tests.grok import ask_response

RECORDINGS = Path(__file__).parent / "recordings"
WEB_2026 = "xai-13218-web-search-provider-tool-result.1.chunks.txt"
X_SEARCH = "xai-x-search-tool.chunks.txt"
REASONING_STORE_FALSE = "xai-text-with-reasoning-streaming-store-false.1.chunks.txt"
GROK_43 = "issue-17936-stream.chunks.txt"
STREAMS = (WEB_2026, X_SEARCH, REASONING_STORE_FALSE, GROK_43)


def lines(name: str) -> list[str]:
    return (RECORDINGS / name).read_text(encoding="utf-8").split("\n")


def framed(name: str, *, event_lines: bool = False, done: bool = True) -> bytes:
    """As the SDK's tests serve it: `data: <line>` and a blank line each, then `data: [DONE]`."""
    out = []
    for line in lines(name):
        kind = json.loads(line)["type"] if event_lines and line else ""
        out.append((f"event: {kind}\n" if kind else "") + f"data: {line}\n\n")
    if done:
        out.append("data: [DONE]\n\n")
    return "".join(out).encode()


def recorded(name: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in lines(name) if line]


def said(name: str) -> dict[str, Any]:
    """What the recording says, read plainly from its events."""
    events = recorded(name)
    of = lambda kind: [e for e in events if e["type"] == kind]  # noqa: E731
    tools = [e["item"] for e in of("response.output_item.added")]  # in the order they started
    return {
        "text": "".join(e["text"] for e in of("response.output_text.done")),
        "reasoning": "".join(e["text"] for e in of("response.reasoning_summary_text.done")),
        "annotations": [e["annotation"] for e in of("response.output_text.annotation.added")],
        "tools": [t for t in tools if t["type"] not in ("reasoning", "message")],
        "response": of("response.completed")[0]["response"],
    }


async def stream(fake: FakeXAI, grok: GrokClient, raw: bytes) -> list[StreamEvent]:
    fake.queue_response(ScriptedResponse(raw=raw))
    async with aclosing(grok.stream_response(ask_response())) as events:
        return [event async for event in events]


def completion_of(events: list[StreamEvent]) -> Completion:
    assert sum(isinstance(e, StreamEnd) for e in events) == 1
    assert isinstance(events[-1], StreamEnd)
    return events[-1].completion


@pytest.mark.parametrize("name", STREAMS)
@pytest.mark.parametrize(
    ("event_lines", "done"), [(False, True), (True, True), (False, False), (True, False)]
)
async def test_each_recording_reads_as_recorded(
    fake_xai: FakeXAI, grok: GrokClient, name: str, event_lines: bool, done: bool
) -> None:
    events = await stream(fake_xai, grok, framed(name, event_lines=event_lines, done=done))
    truth = said(name)
    completion = completion_of(events)
    assert "".join(e.text for e in events if isinstance(e, ContentDelta)) == truth["text"] == completion.text
    assert "".join(e.text for e in events if isinstance(e, ReasoningDelta)) == truth["reasoning"]
    assert completion.reasoning == truth["reasoning"]
    assert [c.url for c in completion.citations] == [a["url"] for a in truth["annotations"]]
    assert [c.id for c in completion.tool_calls] == [
        t["id"]
        for t in truth["tools"]
        if t["type"] == "web_search_call" or t.get("name", "").startswith(("x_", "view_x"))
    ]
    response = truth["response"]
    assert (completion.id, completion.model, completion.finish_reason) == (
        response["id"],
        response["model"],
        "stop",
    )
    usage = completion.usage
    assert usage is not None
    assert usage.prompt_tokens == response["usage"]["input_tokens"]
    assert usage.completion_tokens + usage.reasoning_tokens == response["usage"]["output_tokens"]
    assert usage.total_tokens == response["usage"]["total_tokens"]


async def test_the_2026_web_search(fake_xai: FakeXAI, grok: GrokClient) -> None:
    events = await stream(fake_xai, grok, framed(WEB_2026))
    started = [e.call for e in events if isinstance(e, ToolCallStarted)]
    done = [e.call for e in events if isinstance(e, ToolCallDone)]
    assert [(c.kind, c.query) for c in started] == [("web", ""), ("web", "")]
    assert [c.query for c in done] == ["current title of https://x.ai site:x.ai", "https://x.ai"]
    assert done[1].sources == (
        "https://x.ai/", "https://en.wikipedia.org/wiki/XAI_(company)",
        "https://docs.aimlapi.com/api-references/text-models-llm/xai",
        "https://play.google.com/store/apps/details?id=ai.x.grok", "https://x.com/xai",
    )  # fmt: skip
    completion = completion_of(events)
    assert completion.text == "**xAI**"
    assert len(completion.citations) == 9
    assert all(
        (c.title, c.start, c.end) == (None, None, None) for c in completion.citations
    )  # title = URL, 0/0
    assert [s.url for s in completion.sources] == [
        "https://x.ai/", "https://x.ai/news", "https://play.google.com/store/apps/details?id=ai.x.grok",
        "https://x.ai/grok", "https://x.com/xai", "https://x.ai/api",
        "https://docs.aimlapi.com/api-references/text-models-llm/xai",
        "https://en.wikipedia.org/wiki/XAI_(company)", "https://x.ai/legal/terms-of-service",
    ]  # fmt: skip
    assert completion.fingerprint == "fp_eb3c003fc66c14ed"
    usage = completion.usage
    assert usage is not None
    assert (usage.prompt_tokens, usage.cached_tokens, usage.completion_tokens, usage.reasoning_tokens) == (
        4144,
        1920,
        49,
        0,
    )
    assert (usage.cost_ticks, usage.tools.web_search_calls, usage.tools.sub_calls) == (132_865_000, 2, 2)


def test_the_recorded_cost_is_tokens_at_grok_4_3_rates_plus_two_web_searches() -> None:
    """Checked in the reference: billed at grok-4.3 rates (though it echoed grok-4-fast-non-reasoning)
    plus 2 x $0.005. The PriceBook computes the same when cost_in_usd_ticks is absent."""
    usage = recorded(WEB_2026)[-1]["response"]["usage"]
    parsed = response_usage(usage)
    assert parsed is not None
    assert (
        PriceBook().cost_ticks("grok-4.3", replace(parsed, cost_ticks=None))
        == 132_865_000
        == parsed.cost_ticks
    )


async def test_the_x_search_as_custom_tool_calls(fake_xai: FakeXAI, grok: GrokClient) -> None:
    events = await stream(fake_xai, grok, framed(X_SEARCH))
    done = [e.call for e in events if isinstance(e, ToolCallDone)]
    x_calls = [c for c in done if c.kind == "x"]
    assert [(c.name, c.query) for c in x_calls] == [
        ("x_keyword_search", "from:xai filter:media"),
        (
            "view_x_video",
            "https://video.twimg.com/amplify_video/1991284765027364866/vid/avc1/468x270/kRkbodV96jk4PmbG.mp4",
        ),
    ]
    started = [e.call for e in events if isinstance(e, ToolCallStarted) and e.call.kind == "x"]
    assert [c.query for c in started][:2] == ["", "from:xai filter:media"]  # the query once its input is done
    webs = [c for c in done if c.kind == "web"]
    assert [c.id[-8:] for c in webs] == ["09546004", "45339693", "55360208", "63718660"]  # ended out of order
    completion = completion_of(events)
    assert len(completion.sources) == 20 and all(
        s.url.startswith("https://x.com/i/status/") for s in completion.sources
    )
    assert all(s.title is None and s.cited for s in completion.sources)
    usage = completion.usage
    assert usage is not None and usage.cost_ticks is None
    assert (usage.tools.x_search_calls, usage.tools.sub_calls, usage.prompt_tokens) == (1, 6, 27_236)
    grok43 = PriceBook().token_prices("grok-4.3")
    tokens = (27_236 - 4_585) * grok43.prompt + 4_585 * grok43.cached + 3_077 * grok43.completion
    assert (
        PriceBook().cost_ticks("grok-4.3", usage) == tokens + 50_000_000
    )  # one X search at the per-call price


async def test_encrypted_reasoning_is_never_kept(fake_xai: FakeXAI, grok: GrokClient) -> None:
    raw = framed(REASONING_STORE_FALSE)
    secret = next(
        e["item"]["encrypted_content"]
        for e in recorded(REASONING_STORE_FALSE)
        if "item" in e and "encrypted_content" in e["item"]
    )
    assert secret.encode() in raw
    completion = completion_of(await stream(fake_xai, grok, raw))
    assert completion.reasoning.startswith("First, the question is:")
    assert secret[:40] not in repr(completion)


async def test_grok_4_3_reasoning_summary_then_hello(fake_xai: FakeXAI, grok: GrokClient) -> None:
    events = await stream(fake_xai, grok, framed(GROK_43))
    assert [type(e) for e in events][:1] == [ReasoningDelta]
    completion = completion_of(events)
    assert (completion.text, completion.reasoning) == (
        "hello",
        'The user says: "Reply with exactly: hello"\n',
    )
    assert completion.model == "grok-4.3"


@pytest.mark.parametrize("name", STREAMS)
def test_any_split_of_the_bytes_reads_the_same(name: str) -> None:
    """Bytes in any pieces (here single bytes, CRLF line ends too) give the same events."""
    whole = framed(name, event_lines=True)
    expected = read(whole, [whole])
    crlf = whole.replace(b"\n", b"\r\n")
    for raw in (whole, crlf):
        step = 1 if name != X_SEARCH else 7  # the long one in 7-byte pieces: seconds, not minutes
        assert read(raw, [raw[i : i + step] for i in range(0, len(raw), step)]) == expected


def read(raw: bytes, pieces: list[bytes]) -> tuple[list[StreamEvent], Completion]:
    reading, parser = ResponseReading(), EventData()
    events = [event for piece in pieces for data in parser.feed(piece) for event in reading.take(data)]
    assert reading.missing() is None
    return events, reading.completion()


async def test_whole_2025_responses(fake_xai: FakeXAI, grok: GrokClient) -> None:
    """The 2025 non-streamed formats: calls with `arguments`, citations of {type, url} only."""
    body = json.loads((RECORDINGS / "xai-web-search-tool.1.json").read_text())
    fake_xai.fail_next(200, body=body, path="/v1/responses")
    web = await grok.respond(ask_response())
    assert [(c.kind, c.name, c.query) for c in web.tool_calls] == [("web", "web_search", "what is xAI")]
    assert web.text.startswith("xAI is an American artificial intelligence company")
    assert [s.url for s in web.sources][:2] == [
        "https://www.ibm.com/think/topics/explainable-ai",
        "https://x.ai/company",
    ]
    assert web.usage is not None and (web.usage.completion_tokens, web.usage.reasoning_tokens) == (
        583 - 380,
        380,
    )
    body = json.loads((RECORDINGS / "xai-code-execution-tool.1.json").read_text())
    fake_xai.fail_next(200, body=body, path="/v1/responses")
    code = await grok.respond(ask_response())
    [call] = code.tool_calls
    assert (call.kind, call.name, call.status) == ("code", "code_execution", "completed")
    assert call.code.startswith("def fibonacci(n):") and call.code.endswith("print(fibonacci(10))")
    assert code.text == "55"
