"""A streamed Responses API answer, event by event: text and reasoning-summary deltas, tool calls
starting and ending, citations, and the final response with its usage.

Events are keyed by their JSON `type` (an `event:` line, comment keep-alives and a `[DONE]` are
tolerated by bot/grok/sse.py and here); unknown types are ignored. The two deltas are tested first:
they are nearly every event of a stream. Sequence: shared/reference/xai-agent-tools.md §3.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from bot.errors import GrokUnavailable
from bot.grok.outputs import citation as citation_of
from bot.grok.outputs import completion_of, query_of, read_output, tool_call
from bot.grok.stream import broken
from bot.grok.types import (
    Citation,
    Completion,
    ContentDelta,
    ReasoningDelta,
    StreamEvent,
    ToolCall,
    ToolCallDone,
    ToolCallStarted,
)

log = logging.getLogger(__name__)

TEXT_DELTA = "response.output_text.delta"
REASONING_DELTA = "response.reasoning_summary_text.delta"
MESSAGE_LIMIT = 300


class ResponseReading:
    """What a Responses stream has said so far; `take` reads one event's data."""

    # A gathered wait ends at once for a new output item (a tool call must show at once, the
    # answer's first words too) and for the end.
    urgent: tuple[bytes, ...] = (
        b'"response.output_item.added"',
        b'"response.completed"',
        b'"response.incomplete"',
        b'"response.failed"',
        b'"type":"error"',
        b"[DONE]",
    )

    def __init__(self) -> None:
        self.text: list[str] = []
        self.reasoning: list[str] = []
        self.citations: list[Citation] = []
        self.calls: dict[str, ToolCall] = {}  # by item id: tool items interleave and end out of order
        self.snapshot: dict[str, Any] = {}  # the latest response object (created, then completed)
        self.part_start = 0  # where the current content part starts in the text
        self.done = False  # the end event or [DONE] arrived: read no further
        self.ended = False  # the end event arrived
        self.gather = False  # the answer (or its reasoning) is streaming and no item is starting

    def take(self, data: bytes) -> tuple[StreamEvent, ...]:
        """The stream events in one event's data (none for most lifecycle events)."""
        if data == b"[DONE]":
            self.done = True
            return ()
        if not data:
            return ()
        event = json.loads(data)
        kind = event.get("type")
        if kind == TEXT_DELTA:
            delta = event.get("delta")
            if delta:
                self.text.append(delta)
                self.gather = True
                return (ContentDelta(delta),)
            return ()
        if kind == REASONING_DELTA:
            delta = event.get("delta")
            if delta:
                self.reasoning.append(delta)
                self.gather = True
                return (ReasoningDelta(delta),)
            return ()
        handler = _HANDLERS.get(kind)
        return handler(self, event) if handler is not None else ()

    def _response(self, event: dict[str, Any]) -> tuple[StreamEvent, ...]:
        response = event.get("response")
        if isinstance(response, dict):
            self.snapshot = response
        return ()

    def _end(self, event: dict[str, Any]) -> tuple[StreamEvent, ...]:
        self._response(event)
        self.ended = self.done = True
        return ()

    def _item_added(self, event: dict[str, Any]) -> tuple[StreamEvent, ...]:
        self.gather = False  # whatever starts now is shown at once
        call = tool_call(event.get("item"))
        if call is None:
            return ()
        self.calls[call.id] = call
        return (ToolCallStarted(call),)

    def _item_done(self, event: dict[str, Any]) -> tuple[StreamEvent, ...]:
        call = tool_call(event.get("item"))  # a reasoning item's encrypted_content is never read
        if call is None:
            return ()
        self.calls[call.id] = call
        return (ToolCallDone(call),)

    def _known(self, event: dict[str, Any], *, query: str = "", code: str = "") -> tuple[StreamEvent, ...]:
        """A started call's query or code became known."""
        call = self.calls.get(str(event.get("item_id")))
        if call is None or call.status != "in_progress" or not (query or code):
            return ()
        call = self.calls[call.id] = replace(call, query=query or call.query, code=code or call.code)
        return (ToolCallStarted(call),)

    def _input(self, event: dict[str, Any]) -> tuple[StreamEvent, ...]:
        return self._known(event, query=query_of(event.get("input")))

    def _code(self, event: dict[str, Any]) -> tuple[StreamEvent, ...]:
        code = event.get("code")
        return self._known(event, code=code) if isinstance(code, str) else ()

    def _part(self, event: dict[str, Any]) -> tuple[StreamEvent, ...]:
        self.part_start = sum(map(len, self.text))
        return ()

    def _annotation(self, event: dict[str, Any]) -> tuple[StreamEvent, ...]:
        found = citation_of(event.get("annotation"), offset=self.part_start)
        if found is not None:
            self.citations.append(found)
        return ()

    def _failed(self, event: dict[str, Any]) -> tuple[StreamEvent, ...]:
        """`response.failed` or an `error` event (HTTP 200, then the failure)."""
        response = event.get("response")
        error = response.get("error") if isinstance(response, dict) else event
        message = error.get("message") if isinstance(error, dict) else None
        said = str(message or "no message")[:MESSAGE_LIMIT]
        if self.text or self.reasoning:
            raise broken(f"an error event ({said})", self)
        log.warning("grok response failed before any text: %s", said)
        raise GrokUnavailable(f"xAI failed the answer before any text: {said}")

    def missing(self) -> str | None:
        return None if self.ended else "an end without response.completed"

    def completion(self) -> Completion:
        raw = self.snapshot
        out = read_output(raw.get("output"))
        text = "".join(self.text) if self.text else "".join(out.text)
        return completion_of(
            raw,
            text=text,
            reasoning="".join(self.reasoning) or "".join(out.reasoning),
            citations=self.citations or out.citations,
            calls=list(self.calls.values()) or out.calls,
        )


_Handler = Callable[[ResponseReading, dict[str, Any]], tuple[StreamEvent, ...]]
_HANDLERS: dict[Any, _Handler] = {
    "response.created": ResponseReading._response,
    "response.in_progress": ResponseReading._response,
    "response.completed": ResponseReading._end,
    "response.incomplete": ResponseReading._end,
    "response.failed": ResponseReading._failed,
    "error": ResponseReading._failed,
    "response.output_item.added": ResponseReading._item_added,
    "response.output_item.done": ResponseReading._item_done,
    "response.custom_tool_call_input.done": ResponseReading._input,
    "response.code_interpreter_call_code.done": ResponseReading._code,
    "response.content_part.added": ResponseReading._part,
    "response.output_text.annotation.added": ResponseReading._annotation,
}
