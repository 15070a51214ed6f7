"""The xAI client: GrokClient over httpx, typed wire values, prices, pacing and image helpers."""

from __future__ import annotations

from bot.grok.client import REASONING_EFFORT_MODELS, Gathering, GrokClient
from bot.grok.images import ACCEPTED as ACCEPTED_IMAGES
from bot.grok.images import IMAGE_TYPES, MAX_IMAGE_BYTES, image_part, sniff_image_type, user_hash
from bot.grok.pacing import Budget, Pacing, Permit, RetryPolicy
from bot.grok.pricing import (
    DEFAULT_CONTEXT_WINDOW,
    TICKS_PER_USD,
    PriceBook,
    TokenPrices,
    estimate_prompt_tokens,
)
from bot.grok.transport import Observer, Timeouts
from bot.grok.types import (
    ApiKeyInfo,
    ChatMessage,
    ChatRequest,
    Completion,
    ContentDelta,
    GeneratedImage,
    ImagePart,
    ImageResult,
    ModelInfo,
    Part,
    ReasoningDelta,
    StreamEnd,
    StreamEvent,
    TextPart,
    Usage,
)

__all__ = [
    "ACCEPTED_IMAGES",
    "DEFAULT_CONTEXT_WINDOW",
    "IMAGE_TYPES",
    "MAX_IMAGE_BYTES",
    "REASONING_EFFORT_MODELS",
    "TICKS_PER_USD",
    "ApiKeyInfo",
    "Budget",
    "ChatMessage",
    "ChatRequest",
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
    "RetryPolicy",
    "StreamEnd",
    "StreamEvent",
    "TextPart",
    "Timeouts",
    "TokenPrices",
    "Usage",
    "estimate_prompt_tokens",
    "image_part",
    "sniff_image_type",
    "user_hash",
]
