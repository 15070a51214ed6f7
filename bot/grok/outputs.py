"""What a Responses API answer says, typed: its output items (message text, reasoning summary, tool
calls), `url_citation` annotations, sources, usage with the server-side tools, and how it ended.

Items and annotations are dispatched on their `type`; unknown ones are skipped (new ones appear
without notice). Encrypted reasoning is never read. Formats: shared/reference/xai-agent-tools.md §2.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from bot.grok.types import Citation, Completion, Source, ToolCall, ToolKind, ToolOutput, ToolUsage, Usage
from bot.grok.wire import int_of

# X search's sub-tools (custom_tool_call names); view_image and others are not shown as searches.
X_TOOLS = frozenset(
    {"x_keyword_search", "x_semantic_search", "x_user_search", "x_thread_fetch", "view_x_video"}
)
_CALL_TYPES: dict[str, tuple[ToolKind, str]] = {  # item type: (kind, default sub-tool name)
    "web_search_call": ("web", "web_search"),
    "x_search_call": ("x", "x_search"),  # the 2025 format
    "custom_tool_call": ("x", "x_search"),
    "code_interpreter_call": ("code", "code_execution"),
}
# What a tool call's input says it looks for, by the first key present.
_QUERY_KEYS = ("query", "url", "pattern", "username", "handle", "name", "post_id", "video_url")


def _arguments(raw: Any) -> dict[str, Any]:
    """A JSON-string argument object ({} when it is not one)."""
    if isinstance(raw, dict):
        return raw
    try:
        value = json.loads(raw) if isinstance(raw, str) and raw else None
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def query_of(arguments: Any) -> str:
    """What a call searched for, opened or fetched, from its action or input."""
    args = _arguments(arguments)
    for key in _QUERY_KEYS:
        value = args.get(key)
        if isinstance(value, str | int) and not isinstance(value, bool) and str(value):
            return str(value)
    return arguments if isinstance(arguments, str) and not args else ""


def _unique(urls: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(urls))


def tool_call(item: Any) -> ToolCall | None:
    """The tool call an output item describes, or None for other (and unknown) items."""
    if not isinstance(item, dict):
        return None
    spec = _CALL_TYPES.get(item.get("type") or "")
    if spec is None:
        return None
    kind, default = spec
    name = str(item.get("name") or default)
    if item["type"] == "custom_tool_call" and name not in X_TOOLS:
        return None
    call = ToolCall(id=str(item.get("id") or ""), kind=kind, name=name, status=str(item.get("status") or ""))
    if kind == "code":
        return _code_call(call, item)
    action = item.get("action")
    if isinstance(action, dict):
        sources = action.get("sources")
        found = [s["url"] for s in sources or () if isinstance(s, dict) and isinstance(s.get("url"), str)]
        return replace(call, query=query_of(action), sources=_unique(found))
    return replace(call, query=query_of(item.get("input") or item.get("arguments")))


def _code_call(call: ToolCall, item: dict[str, Any]) -> ToolCall:
    """A code execution: its code (2025: inside `arguments`) and outputs."""
    code = item.get("code")
    if not isinstance(code, str):
        code = str(_arguments(item.get("arguments")).get("code") or "")
    outputs = item.get("outputs")
    found = tuple(_output(o) for o in outputs if isinstance(o, dict)) if isinstance(outputs, list) else ()
    return replace(call, code=code, outputs=found)


def _output(raw: dict[str, Any]) -> ToolOutput:
    return ToolOutput(
        kind=str(raw.get("type") or ""), text=str(raw.get("logs") or ""), url=str(raw.get("url") or "")
    )


def citation(raw: Any, *, offset: int = 0) -> Citation | None:
    """A `url_citation` annotation (other annotation types: None). Offsets are kept only when
    they span something; `offset` is where the annotation's content part starts in the text."""
    if not isinstance(raw, dict) or raw.get("type") != "url_citation" or not isinstance(raw.get("url"), str):
        return None
    url = raw["url"]
    title = raw.get("title")
    known = isinstance(title, str) and title.strip() not in ("", url) and not title.strip().isdigit()
    start, end = raw.get("start_index"), raw.get("end_index")
    spans = isinstance(start, int) and isinstance(end, int) and 0 <= start < end
    return Citation(
        url=url,
        title=title.strip() if known and isinstance(title, str) else None,
        start=start + offset if spans and isinstance(start, int) else None,
        end=end + offset if spans and isinstance(end, int) else None,
    )


def checked(citations: Iterable[Citation], text: str) -> tuple[Citation, ...]:
    """The citations with offsets only where the text holds an inline marker there."""
    return tuple(
        c if c.start is None or text[c.start : c.end].startswith("[") else replace(c, start=None, end=None)
        for c in citations
    )


def sources_of(citations: Sequence[Citation], calls: Iterable[ToolCall]) -> tuple[Source, ...]:
    """Sources without duplicates, in the order first cited (by position when every citation
    has one), titled where any citation knows the title. When nothing is cited, the sources the
    web searches found (not cited)."""
    ordered = list(citations)
    if ordered and all(c.start is not None for c in ordered):
        ordered.sort(key=lambda c: c.start or 0)
    found: dict[str, Source] = {}
    for c in ordered:
        key = c.url.rstrip("/")
        known = found.get(key)
        if known is None:
            found[key] = Source(c.url, c.title)
        elif known.title is None and c.title is not None:
            found[key] = replace(known, title=c.title)
    if not found:
        for call in calls:
            for url in call.sources:
                found.setdefault(url.rstrip("/"), Source(url, None, cited=False))
    return tuple(found.values())


def response_usage(raw: Any) -> Usage | None:
    """Responses usage: `output_tokens` INCLUDES reasoning here, unlike Chat Completions."""
    if not isinstance(raw, dict):
        return None
    details = raw.get("input_tokens_details")
    out_details = raw.get("output_tokens_details")
    tools = raw.get("server_side_tool_usage_details")
    details = details if isinstance(details, dict) else {}
    out_details = out_details if isinstance(out_details, dict) else {}
    tools = tools if isinstance(tools, dict) else {}
    prompt, output = int_of(raw.get("input_tokens")), int_of(raw.get("output_tokens"))
    reasoning = min(int_of(out_details.get("reasoning_tokens")), output)
    cost = raw.get("cost_in_usd_ticks")
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=output - reasoning,
        reasoning_tokens=reasoning,
        cached_tokens=int_of(details.get("cached_tokens")),
        total_tokens=int_of(raw.get("total_tokens")) or prompt + output,
        cost_ticks=cost if isinstance(cost, int) and not isinstance(cost, bool) else None,
        tools=ToolUsage(
            **{name: int_of(tools.get(name)) for name in _TOOL_COUNTS},
            sub_calls=int_of(raw.get("num_server_side_tools_used")),
        ),
    )


_TOOL_COUNTS = (
    "web_search_calls",
    "x_search_calls",
    "code_interpreter_calls",
    "file_search_calls",
    "mcp_calls",
    "x_posts_fetched",
    "x_users_fetched",
)


@dataclass
class Output:
    """What a response's output items say."""

    text: list[str] = field(default_factory=list)
    reasoning: list[str] = field(default_factory=list)
    citations: list[Citation] = field(default_factory=list)
    calls: list[ToolCall] = field(default_factory=list)


def read_output(items: Any) -> Output:
    out = Output()
    for item in items if isinstance(items, list) else ():
        kind = item.get("type") if isinstance(item, dict) else None
        if kind == "message":
            for part in item.get("content") or ():
                if isinstance(part, dict) and part.get("type") == "output_text":
                    offset = sum(map(len, out.text))
                    out.text.append(str(part.get("text") or ""))
                    found = (citation(a, offset=offset) for a in part.get("annotations") or ())
                    out.citations.extend(c for c in found if c is not None)
        elif kind == "reasoning":  # the summary only: encrypted_content is never read
            out.reasoning.extend(
                str(s.get("text") or "") for s in item.get("summary") or () if isinstance(s, dict)
            )
        else:
            call = tool_call(item)
            if call is not None:
                out.calls.append(call)
    return out


def finish_reason(raw: dict[str, Any]) -> str:
    """ "stop" for a completed response, "length" when it ran out of output tokens, else the
    reason (or status) xAI gives."""
    status = raw.get("status")
    if status == "completed":
        return "stop"
    details = raw.get("incomplete_details")
    reason = details.get("reason") if isinstance(details, dict) else None
    if reason == "max_output_tokens":
        return "length"
    return str(reason or status or "")


def fingerprint_of(raw: dict[str, Any]) -> str:
    metadata = raw.get("metadata")
    found = metadata.get("system_fingerprint") if isinstance(metadata, dict) else None
    return str(found or raw.get("system_fingerprint") or "")


def completion_of(
    raw: dict[str, Any],
    *,
    text: str,
    reasoning: str,
    citations: Sequence[Citation],
    calls: Sequence[ToolCall],
) -> Completion:
    """A response object (and what its stream said) as a Completion."""
    cited = checked(citations, text)
    return Completion(
        id=str(raw.get("id") or ""),
        model=str(raw.get("model") or ""),
        text=text,
        reasoning=reasoning,
        finish_reason=finish_reason(raw),
        usage=response_usage(raw.get("usage")),
        fingerprint=fingerprint_of(raw),
        citations=cited,
        sources=sources_of(cited, calls),
        tool_calls=tuple(calls),
    )


def parse_response(raw: dict[str, Any]) -> Completion:
    """A whole (non-streamed) response object."""
    out = read_output(raw.get("output"))
    return completion_of(
        raw,
        text="".join(out.text),
        reasoning="".join(out.reasoning),
        citations=out.citations,
        calls=out.calls,
    )
