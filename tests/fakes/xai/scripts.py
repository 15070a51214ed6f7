"""What tests script: chat replies and stream faults, and the requests the fake records."""

from __future__ import annotations

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


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: CIMultiDict[str]  # case-insensitive
    json: Any  # None when the body is empty or not JSON
