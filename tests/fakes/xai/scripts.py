"""What tests script: chat replies and stream faults, and the requests the fake records."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Literal

from multidict import CIMultiDict


@dataclass(frozen=True)
class Fault:
    """`cut`: half a line, then the connection drops; `malformed`: a garbled data line, then the
    stream goes on; `stall`: silence for `stall_seconds`, then it goes on. Before text chunk
    number `after_chunks` (0 = before the first)."""

    kind: Literal["cut", "malformed", "stall"]
    after_chunks: int
    stall_seconds: float = 30.0


@dataclass(frozen=True)
class ScriptedReply:
    text: str | None = None  # None: "Echo: <last user text>"
    reasoning: str = ""
    finish_reason: str = "stop"
    # Usage at the requested cap: text that fills max_completion_tokens (finish "length").
    at_cap: bool = False
    # The reasoning tokens billed, whatever `reasoning` says (0 anyway with reasoning_effort none).
    reasoning_tokens: int | None = None
    chunk_chars: int = 4
    first_token_delay: float = 0.0  # also delays a non-streamed answer
    tokens_per_second: float | None = None
    prompt_tokens: int | None = None
    cost_ticks: int | None = None  # else computed from the model's prices (when report_cost)
    model: str | None = None  # the resolved name to answer with
    empty_deltas: int = 0  # `"delta":{}` chunks after the first text chunk
    comments: int = 0  # ": keep-alive" lines after the first text chunk
    fault: Fault | None = None
    status: int = 200  # non-200: answer with this error instead
    error_body: dict[str, Any] | None = None
    retry_after: float | None = None
    deferred_pending_polls: int = 2
    end_delay: float = 0.0  # seconds between [DONE] and the end of the response (a lagging server)
    # Event-driven pacing for tests: (i, event) waits for `event` before chunk i (what came before
    # is sent first); `end_hold` holds the response's end, after [DONE], until it is set.
    holds: tuple[tuple[int, asyncio.Event], ...] = ()
    end_hold: asyncio.Event | None = None


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: CIMultiDict[str]  # case-insensitive
    json: Any  # None when the body is empty or not JSON


@dataclass(frozen=True)
class ScriptedTool:
    """A server-side tool call of a scripted response. `seconds`: how long it runs, in the fake's
    seconds (FakeXAI.time_scale real seconds each), with keep-alives meanwhile."""

    kind: Literal["web", "x", "code"]
    query: str = ""  # web and X: what was searched; code: the code run
    sources: tuple[str, ...] = ()  # web: the URLs found
    output: str = ""  # code: its logs
    seconds: float = 0.0
    name: str | None = None  # the sub-tool (default web_search, x_keyword_search, code_execution)
    status: str = "completed"  # "failed": not billed
    posts: int = 20  # X: posts fetched (billed per post)
    hold: asyncio.Event | None = None  # the call also runs until this is set (event-driven tests)


@dataclass(frozen=True)
class ScriptedCitation:
    """A url_citation annotation, sent after the last text delta. `title` None: the URL again as
    the title (what xAI sent in 2026). With `marker`, the text holds "[[N]](url)" (N = the
    source's number) and the annotation gives its offsets; without, they are 0/0."""

    url: str
    title: str | None = None
    marker: bool = False


@dataclass(frozen=True)
class ScriptedResponse:
    """One /v1/responses answer. Streams follow the 2026 event sequence (agent tools reference §3):
    reasoning summary, tool calls, then the message with its annotations after the last delta,
    then response.completed with usage and cost_in_usd_ticks."""

    text: str | None = None  # None: "Echo: <last user text>"
    reasoning: str = ""  # the reasoning summary
    tools: tuple[ScriptedTool, ...] = ()
    parallel: bool = False  # tools start together and end in reverse order (keyed by item id)
    citations: tuple[ScriptedCitation, ...] = ()
    chunk_chars: int = 4
    event_lines: bool = False  # an `event: <type>` line before each data line
    done_marker: bool = False  # `data: [DONE]` after the end event
    keepalive_s: float = 15.0  # comment keep-alives while tools run, in the fake's seconds (0: none)
    keepalive_events: bool = False  # {"type":"keepalive"} events instead of comments (OpenAI's way)
    unknown_events: bool = False  # event and item types no client knows, as new ones appear
    end: Literal["completed", "incomplete", "failed"] = "completed"
    stream_error: str | None = None  # an `error` event (after HTTP 200) after `error_after` text chunks
    error_after: int = 0
    union_sources: bool = True  # response.completed gives every web call the union of sources (as recorded)
    prompt_tokens: int | None = None  # one step's prompt; input_tokens sums every agent step
    cost_ticks: int | None = None  # else computed (when FakeXAI.report_cost)
    model: str | None = None  # the name to answer with
    first_token_delay: float = 0.0
    tokens_per_second: float | None = None
    fault: Fault | None = None  # before text chunk `after_chunks`
    status: int = 200  # non-200: answer with this error instead
    error_body: dict[str, Any] | None = None
    retry_after: float | None = None
    raw: bytes | None = None  # serve exactly these bytes as the event stream (a recording)
