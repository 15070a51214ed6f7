"""What Grok calls cost, in ticks (1 USD = 1e10 ticks): a built-in table, overlaid with live prices
from /v1/language-models and /v1/image-generation-models, and context windows.

Live token prices are USD cents per 100M tokens, which is exactly ticks per token (reference §9).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from bot.grok.types import ChatMessage, ImagePart, ModelInfo, TextPart, Usage

log = logging.getLogger(__name__)

TICKS_PER_USD = 10_000_000_000
TICKS_PER_CENT = 100_000_000
DEFAULT_CONTEXT_WINDOW = 131_072
IMAGE_PROMPT_TOKENS = 1_792  # the most one input image can cost (reference §7)


@dataclass(frozen=True, slots=True)
class TokenPrices:
    """Ticks per token."""

    prompt: int
    cached: int
    completion: int


# USD per 1M tokens x 10_000 = ticks per token. Where xAI publishes no cached price the full prompt
# price stands in: costs come out high rather than low, which is the safe side for quotas.
BUILTIN_TOKEN_PRICES: dict[str, TokenPrices] = {
    "grok-4.3": TokenPrices(12_500, 2_000, 25_000),
    "grok-4-1-fast-reasoning": TokenPrices(2_000, 2_000, 5_000),
    "grok-4-1-fast-non-reasoning": TokenPrices(2_000, 2_000, 5_000),
    "grok-4-fast-reasoning": TokenPrices(2_000, 2_000, 5_000),
    "grok-4-fast-non-reasoning": TokenPrices(2_000, 2_000, 5_000),
    "grok-4-0709": TokenPrices(30_000, 30_000, 150_000),
    "grok-3": TokenPrices(30_000, 7_500, 150_000),
    "grok-3-mini": TokenPrices(3_000, 750, 5_000),
    "grok-code-fast-1": TokenPrices(2_000, 200, 15_000),  # unconfirmed (reference §9)
}

BUILTIN_IMAGE_PRICES: dict[str, int] = {
    "grok-imagine-image": 200_000_000,
    "grok-imagine-image-quality": 450_000_000,  # unconfirmed, a reseller's figure
    "grok-2-image-1212": 700_000_000,
}

BUILTIN_ALIASES: dict[str, str] = {
    "grok-4": "grok-4-0709",
    "grok-4-latest": "grok-4-0709",
    "grok-4-fast": "grok-4-fast-reasoning",
    "grok-4-1-fast": "grok-4-1-fast-reasoning",
    "grok-3-latest": "grok-3",
    "grok-3-beta": "grok-3",
    "grok-2-image": "grok-2-image-1212",
    "grok-2-image-latest": "grok-2-image-1212",
}

CONTEXT_WINDOWS: dict[str, int] = {
    "grok-4.3": 1_000_000,
    "grok-4-1-fast-reasoning": 2_000_000,
    "grok-4-1-fast-non-reasoning": 2_000_000,
    "grok-4-fast-reasoning": 2_000_000,
    "grok-4-fast-non-reasoning": 2_000_000,
    "grok-4-0709": 256_000,
    "grok-3": 131_072,
    "grok-3-mini": 131_072,
    "grok-code-fast-1": 256_000,
}

# A live image price outside this range is not in cents (the spec's unit is doubted, reference §9).
_PLAUSIBLE_IMAGE_TICKS = range(1, 10 * TICKS_PER_USD + 1)


class PriceBook:
    """Prices per model. Unknown models are charged at the dearest known price, never at zero."""

    def __init__(
        self,
        *,
        tokens: Mapping[str, TokenPrices] | None = None,
        images: Mapping[str, int] | None = None,
        aliases: Mapping[str, str] | None = None,
    ) -> None:
        self._tokens = dict(BUILTIN_TOKEN_PRICES if tokens is None else tokens)
        self._images = dict(BUILTIN_IMAGE_PRICES if images is None else images)
        self._aliases = dict(BUILTIN_ALIASES if aliases is None else aliases)
        self.live = False  # True once live prices were loaded
        self.loaded_at: datetime | None = None  # when live prices were last loaded (the admin pages show it)

    def update(self, *, language: Iterable[ModelInfo], image: Iterable[ModelInfo]) -> None:
        """Overlay live prices (ModelInfo values in ticks); models missing from them keep theirs."""
        for model in language:
            self._tokens[model.id] = TokenPrices(
                model.prompt_price, model.cached_prompt_price, model.completion_price
            )
            self._aliases.update(dict.fromkeys(model.aliases, model.id))
        for model in image:
            if model.image_price in _PLAUSIBLE_IMAGE_TICKS:
                self._images[model.id] = model.image_price
            else:
                log.warning("implausible image price for %s ignored", model.id)
            self._aliases.update(dict.fromkeys(model.aliases, model.id))
        self.live = True
        self.loaded_at = datetime.now(UTC)

    def resolves(self, model: str) -> str | None:
        """The known model `model` names (an id, an alias, or a resolved name such as
        grok-3-mini-high), or None when the book does not know it."""
        if model in self._tokens or model in self._images:
            return model
        alias = self._aliases.get(model)
        if alias is not None:
            return alias
        best: str | None = None
        for known in (*self._tokens, *self._images):
            if model.startswith(known + "-") and (best is None or len(known) > len(best)):
                best = known
        return best

    def token_prices(self, model: str) -> TokenPrices:
        known = self.resolves(model)
        prices = self._tokens.get(known) if known is not None else None
        if prices is not None:
            return prices
        log.warning("no price for model %s; charging the dearest known", model)
        return TokenPrices(
            max(p.prompt for p in self._tokens.values()),
            max(p.cached for p in self._tokens.values()),
            max(p.completion for p in self._tokens.values()),
        )

    def cost_ticks(self, model: str, usage: Usage) -> int:
        """The server's `cost_ticks` when present, else computed with xAI semantics: cached tokens
        at the cached price, reasoning tokens at the completion price."""
        if usage.cost_ticks is not None:
            return usage.cost_ticks
        prices = self.token_prices(model)
        cached = min(usage.cached_tokens, usage.prompt_tokens)
        return (
            (usage.prompt_tokens - cached) * prices.prompt
            + cached * prices.cached
            + (usage.completion_tokens + usage.reasoning_tokens) * prices.completion
        )

    def estimate_ticks(
        self,
        model: str,
        *,
        prompt_tokens: int,
        max_completion_tokens: int,
        reasoning_tokens: int = 0,
    ) -> int:
        """An upper bound for a reservation: no cache discount, every allowed output token used.
        `max_completion_tokens` does not cap reasoning: pass an allowance for reasoning models."""
        prices = self.token_prices(model)
        return prompt_tokens * prices.prompt + (max_completion_tokens + reasoning_tokens) * prices.completion

    def image_ticks(self, model: str, n: int) -> int:
        known = self.resolves(model)
        price = self._images.get(known) if known is not None else None
        if price is None:
            log.warning("no price for image model %s; charging the dearest known", model)
            price = max(self._images.values())
        return price * n

    def context_window(self, model: str) -> int:
        known = self.resolves(model)
        if known is None:
            return DEFAULT_CONTEXT_WINDOW
        return CONTEXT_WINDOWS.get(known, DEFAULT_CONTEXT_WINDOW)


def estimate_prompt_tokens(messages: Iterable[ChatMessage]) -> int:
    """A cheap upper-leaning guess of prompt tokens (about 4 characters per token, images at their
    maximum). Real counts are higher than /tokenize-text's because of hidden formatting."""
    chars = 0
    images = 0
    count = 0
    for message in messages:
        count += 1
        if isinstance(message.content, str):
            chars += len(message.content)
            continue
        for part in message.content:
            if isinstance(part, TextPart):
                chars += len(part.text)
            elif isinstance(part, ImagePart):
                images += 1
    return chars // 3 + 8 * count + images * IMAGE_PROMPT_TOKENS
