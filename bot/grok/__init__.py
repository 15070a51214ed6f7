"""The xAI client: GrokClient (Chat Completions and the Responses API with server-side tools) over
the shared HTTP client `http_client()` builds, typed wire values, prices, pacing and image helpers."""

from __future__ import annotations

from bot.grok.client import Gathering, GrokClient, http_client
from bot.grok.images import IMAGE_TYPES, MAX_IMAGE_BYTES, image_part, user_hash
from bot.grok.pacing import Budget, Pacing, Permit, RetryPolicy
from bot.grok.pricing import PriceBook, TokenPrices
from bot.grok.tools import MAX_DOMAINS, MAX_X_HANDLES, Tools, WebSearch, XSearch
from bot.grok.transport import Observer, Timeouts
from bot.grok.types import (
    ApiKeyInfo,
    ChatMessage,
    ChatRequest,
    Citation,
    Completion,
    ContentDelta,
    GeneratedImage,
    ImagePart,
    ImageResult,
    ModelInfo,
    Part,
    ReasoningDelta,
    ResponseRequest,
    Source,
    StreamEnd,
    StreamEvent,
    TextPart,
    ToolCall,
    ToolCallDone,
    ToolCallStarted,
    ToolKind,
    ToolOutput,
    ToolUsage,
    Usage,
)

__all__ = [
    "IMAGE_TYPES",
    "MAX_DOMAINS",
    "MAX_IMAGE_BYTES",
    "MAX_X_HANDLES",
    "ApiKeyInfo",
    "Budget",
    "ChatMessage",
    "ChatRequest",
    "Citation",
    "Completion",
    "ContentDelta",
    "Gathering",
    "GeneratedImage",
    "GrokClient",
    "ImagePart",
    "ImageResult",
    "ModelInfo",
    "Observer",
    "Pacing",
    "Part",
    "Permit",
    "PriceBook",
    "ReasoningDelta",
    "ResponseRequest",
    "RetryPolicy",
    "Source",
    "StreamEnd",
    "StreamEvent",
    "TextPart",
    "Timeouts",
    "TokenPrices",
    "ToolCall",
    "ToolCallDone",
    "ToolCallStarted",
    "ToolKind",
    "ToolOutput",
    "ToolUsage",
    "Tools",
    "Usage",
    "WebSearch",
    "XSearch",
    "http_client",
    "image_part",
    "user_hash",
]
