"""The fake's models and prices, its error codes, and how it counts tokens."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

API_KEY = "xai-test-key"
TEAM_ID = "5ea6f6bd-0000-4000-8000-fa4e7eam0001"
DAY = 24 * 3600.0


@dataclass(frozen=True)
class FakeModel:
    id: str
    aliases: tuple[str, ...] = ()
    context: int = 131_072
    prices: tuple[int, int, int] = (0, 0, 0)  # ticks per token: prompt, cached, completion
    efforts: tuple[str, ...] | None = None  # accepted reasoning_effort values; None: 400 if sent
    reasoning: bool = False  # a reasoning model: rejects stop and penalties
    exposes_reasoning: bool = False


LANGUAGE_MODELS = (
    FakeModel("grok-4.7", (), 500_000, (20_000, 5_000, 60_000), ("low", "medium", "high", "xhigh"), True),
    FakeModel("grok-4.6", (), 500_000, (20_000, 5_000, 60_000), ("low", "medium", "high"), True),
    FakeModel("grok-4.5", (), 500_000, (20_000, 3_000, 60_000), ("low", "medium", "high"), True),
    FakeModel("grok-4.20-0309-reasoning", (), 1_000_000, (12_500, 2_000, 25_000), None, True),
    FakeModel("grok-4.20-0309-non-reasoning", (), 1_000_000, (12_500, 2_000, 25_000)),
    FakeModel("grok-build-0.1", (), 256_000, (10_000, 2_000, 20_000), None, True),
    FakeModel("grok-4.3", (), 1_000_000, (12_500, 2_000, 25_000), ("none", "low", "medium", "high"), True),
    FakeModel("grok-4-1-fast-reasoning", ("grok-4-1-fast",), 2_000_000, (2_000, 500, 5_000), None, True),
    FakeModel("grok-4-1-fast-non-reasoning", (), 2_000_000, (2_000, 500, 5_000)),
    FakeModel("grok-4-fast-reasoning", ("grok-4-fast",), 2_000_000, (2_000, 500, 5_000), None, True),
    FakeModel("grok-4-0709", ("grok-4", "grok-4-latest"), 256_000, (30_000, 7_500, 150_000), None, True),
    FakeModel("grok-3", ("grok-3-latest", "grok-3-beta"), 131_072, (30_000, 7_500, 150_000)),
    FakeModel("grok-3-mini", (), 131_072, (3_000, 750, 5_000), ("low", "high"), True, True),
    FakeModel("grok-code-fast-1", (), 256_000, (2_000, 200, 15_000), None, True, True),
)  # fmt: skip
IMAGE_MODELS: dict[str, tuple[tuple[str, ...], int]] = {  # id: (aliases, USD cents per image)
    "grok-imagine-image": ((), 2),
    "grok-2-image-1212": (("grok-2-image", "grok-2-image-latest"), 7),
}
CODES: dict[int, tuple[str, str]] = {
    400: ("Client specified an invalid argument", "invalid-argument"),
    401: ("The request does not have valid authentication credentials", "unauthenticated"),
    403: ("The caller does not have permission to execute the specified operation", "permission-denied"),
    404: ("Some requested entity was not found", "not-found"),
    410: ("The requested entity is gone", "gone"),
    415: ("Unsupported media type", "invalid-argument"),
    422: ("Client specified an invalid argument", "invalid-argument"),
    429: ("Some resource has been exhausted", "resource-exhausted"),
    500: ("Internal error", "internal"),
    503: ("The service is currently unavailable", "unavailable"),
}  # fmt: skip
CREDITS_TEXT = (
    "Your team {team} has either used all available credits or reached its monthly spending limit. "
    "To continue making API requests, please purchase more credits or raise your spending limit."
)


def tokens(text: str) -> int:
    return math.ceil(len(text) / 4)


def text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def images_in(content: Any) -> int:
    if not isinstance(content, list):
        return 0
    return sum(1 for p in content if isinstance(p, dict) and p.get("type") == "image_url")
