"""Typed values of the Grok client: requests, completions, stream events (text, reasoning, tool
calls), citations, images, models, keys.

Wire JSON is parsed into these at the boundary (bot.grok.wire); nothing else sees raw dicts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from bot.grok.tools import NO_TOOLS, Tools


@dataclass(frozen=True, slots=True)
class TextPart:
    text: str


@dataclass(frozen=True, slots=True)
class ImagePart:
    """An image for the model to look at: an https URL or a `data:image/...;base64,` URL."""

    url: str
    detail: str | None = None  # "auto" | "low" | "high"


Part = TextPart | ImagePart


@dataclass(frozen=True, slots=True)
class ChatMessage:
    role: str  # "system" | "user" | "assistant"
    content: str | tuple[Part, ...]


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """One chat completion. `max_tokens` goes out as `max_completion_tokens` (visible output only);
    `conv_id` as the `x-grok-conv-id` header; `user` should be `images.user_hash(...)`, never a raw id."""

    model: str
    messages: tuple[ChatMessage, ...]
    max_tokens: int | None = None
    temperature: float | None = None
    reasoning_effort: str | None = None
    response_format: Mapping[str, Any] | None = None
    user: str | None = None
    conv_id: str | None = None


@dataclass(frozen=True, slots=True)
class ResponseRequest:
    """One call of the Responses API (`/v1/responses`), always sent with `store: false`: the
    conversation is ours and resent whole each turn. `max_output_tokens` INCLUDES reasoning
    (unlike ChatRequest.max_tokens); `reasoning_effort` goes out only to models that take it;
    `conv_id` goes out as `prompt_cache_key`; `user` should be `images.user_hash(...)`.
    `max_turns` caps the server's agent turns (parallel tool calls share one)."""

    model: str
    messages: tuple[ChatMessage, ...]
    tools: Tools = NO_TOOLS
    max_output_tokens: int | None = None
    reasoning_effort: str | None = None
    temperature: float | None = None
    user: str | None = None
    conv_id: str | None = None
    max_turns: int | None = None

    @classmethod
    def of(
        cls, request: ChatRequest, *, tools: Tools = NO_TOOLS, max_output_tokens: int | None = None
    ) -> ResponseRequest:
        """The same conversation as a chat request, for the Responses API."""
        return cls(
            model=request.model,
            messages=request.messages,
            tools=tools,
            max_output_tokens=max_output_tokens,
            reasoning_effort=request.reasoning_effort,
            temperature=request.temperature,
            user=request.user,
            conv_id=request.conv_id,
        )


@dataclass(frozen=True, slots=True)
class ToolUsage:
    """Server-side tool calls of one response, as billed (`server_side_tool_usage_details`).
    `sub_calls` counts every sub-tool call (several per X search); it is not billed itself."""

    web_search_calls: int = 0
    x_search_calls: int = 0
    code_interpreter_calls: int = 0
    file_search_calls: int = 0
    mcp_calls: int = 0
    x_posts_fetched: int = 0  # billed per post from 2026-09-21 (agent tools reference §4)
    x_users_fetched: int = 0  # billed per profile
    sub_calls: int = 0

    @property
    def calls(self) -> int:
        return (
            self.web_search_calls
            + self.x_search_calls
            + self.code_interpreter_calls
            + self.file_search_calls
            + self.mcp_calls
        )


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts with xAI semantics: `completion_tokens` EXCLUDES `reasoning_tokens`,
    `cached_tokens` and `image_tokens` are parts of `prompt_tokens`. `cost_ticks`: 1 USD = 1e10,
    tools included. On the Responses API `prompt_tokens` sums every internal agent step."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0
    cached_tokens: int = 0
    image_tokens: int = 0
    total_tokens: int = 0
    cost_ticks: int | None = None
    tools: ToolUsage = ToolUsage()


ToolKind = Literal["web", "x", "code"]


@dataclass(frozen=True, slots=True)
class ToolOutput:
    """One output of a code execution: its logs (`text`), or an image (`url`)."""

    kind: str  # "logs" | "image" | what the server says
    text: str = ""
    url: str = ""


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A server-side tool call as a person should see it. `query` is what was searched (or the
    page opened, the post fetched); `code` what was run; `sources` the URLs a web search found
    (never their contents: xAI does not return them)."""

    id: str
    kind: ToolKind
    name: str  # the sub-tool: web_search, browse_page, x_keyword_search, code_execution, ...
    status: str  # "in_progress" | "completed" | "incomplete" | "failed"
    query: str = ""
    code: str = ""
    sources: tuple[str, ...] = ()
    outputs: tuple[ToolOutput, ...] = ()


@dataclass(frozen=True, slots=True)
class Citation:
    """A `url_citation` annotation. `start`/`end` locate its inline marker (`text[start:end]`,
    "[[N]](url)") when the text has one; None when xAI gave no usable offsets (often 0/0)."""

    url: str
    title: str | None = None  # None when unknown (xAI often repeats the URL or the marker number)
    start: int | None = None
    end: int | None = None


@dataclass(frozen=True, slots=True)
class Source:
    """One source of an answer: de-duplicated, in the order it was first cited. `cited` is False
    for a source a search found that no citation named (shown only when nothing was cited)."""

    url: str
    title: str | None = None
    cited: bool = True


@dataclass(frozen=True, slots=True)
class Completion:
    """A whole answer. On the Responses API `reasoning` is the reasoning summary (encrypted
    reasoning is never kept) and the answer may carry citations, sources and tool calls."""

    id: str
    model: str  # the resolved name the server answered with
    text: str
    reasoning: str
    finish_reason: str  # "stop" | "length" | "tool_calls" | anything else the server says
    usage: Usage | None
    fingerprint: str
    citations: tuple[Citation, ...] = ()  # every annotation, in the order xAI sent them
    sources: tuple[Source, ...] = ()
    tool_calls: tuple[ToolCall, ...] = ()


@dataclass(frozen=True, slots=True)
class ContentDelta:
    text: str


@dataclass(frozen=True, slots=True)
class ReasoningDelta:
    text: str


@dataclass(frozen=True, slots=True)
class ToolCallStarted:
    """A server-side tool call began. It may come again for the same `call.id` once its query or
    code is known (X search and code execution send those after the call began)."""

    call: ToolCall


@dataclass(frozen=True, slots=True)
class ToolCallDone:
    """A server-side tool call ended (`call.status` says how), with its query and sources or
    code and outputs."""

    call: ToolCall


@dataclass(frozen=True, slots=True)
class StreamEnd:
    completion: Completion


StreamEvent = ContentDelta | ReasoningDelta | ToolCallStarted | ToolCallDone | StreamEnd


@dataclass(frozen=True, slots=True)
class GeneratedImage:
    data: bytes
    mime_type: str
    revised_prompt: str


@dataclass(frozen=True, slots=True)
class ImageResult:
    images: tuple[GeneratedImage, ...]
    model: str
    cost_ticks: int | None


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """A language or image model as listed by xAI. Prices are ticks: per token for language models
    (`image_price` = per prompt image token), per generated image for image models (`image_price`)."""

    id: str
    aliases: tuple[str, ...] = ()
    input_modalities: tuple[str, ...] = ()
    output_modalities: tuple[str, ...] = ()
    prompt_price: int = 0
    cached_prompt_price: int = 0
    completion_price: int = 0
    image_price: int = 0
    fingerprint: str = ""
    max_prompt_length: int | None = None  # image models only


@dataclass(frozen=True, slots=True)
class ApiKeyInfo:
    redacted_key: str
    name: str
    team_id: str
    blocked: bool  # the key or its whole team is blocked
    disabled: bool
    acls: tuple[str, ...] = field(default=())
