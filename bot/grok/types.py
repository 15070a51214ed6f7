"""Typed values of the Grok client: requests, completions, stream events, images, models, keys.

Wire JSON is parsed into these at the boundary (bot.grok.wire); nothing else sees raw dicts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


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
class Usage:
    """Token counts with xAI semantics: `completion_tokens` EXCLUDES `reasoning_tokens`,
    `cached_tokens` and `image_tokens` are parts of `prompt_tokens`. `cost_ticks`: 1 USD = 1e10."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0
    cached_tokens: int = 0
    image_tokens: int = 0
    total_tokens: int = 0
    cost_ticks: int | None = None


@dataclass(frozen=True, slots=True)
class Completion:
    id: str
    model: str  # the resolved name the server answered with
    text: str
    reasoning: str
    finish_reason: str  # "stop" | "length" | "tool_calls" | anything else the server says
    usage: Usage | None
    fingerprint: str


@dataclass(frozen=True, slots=True)
class ContentDelta:
    text: str


@dataclass(frozen=True, slots=True)
class ReasoningDelta:
    text: str


@dataclass(frozen=True, slots=True)
class StreamEnd:
    completion: Completion


StreamEvent = ContentDelta | ReasoningDelta | StreamEnd


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
