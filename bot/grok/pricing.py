"""What Grok calls cost, in ticks (1 USD = 1e10 ticks): a built-in table, overlaid with live prices
from /v1/language-models and /v1/image-generation-models; server-side tool calls; context windows.

Live token prices are USD cents per 100M tokens, which is exactly ticks per token (reference §9).
Built-in prices: xAI's price list of 2026-09-29 (shared/reference/xai-agent-tools.md §4).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from bot.grok.tools import Tools
from bot.grok.types import ChatMessage, ImagePart, ModelInfo, TextPart, ToolUsage, Usage

log = logging.getLogger(__name__)

TICKS_PER_USD = 10_000_000_000
TICKS_PER_CENT = 100_000_000
DEFAULT_CONTEXT_WINDOW = 131_072
IMAGE_PROMPT_TOKENS = 1_792  # the most one input image can cost (reference §7)
LONG_CONTEXT_TOKENS = 200_000  # from here on a prompt is billed at the long-context prices


@dataclass(frozen=True, slots=True)
class TokenPrices:
    """Ticks per token."""

    prompt: int
    cached: int
    completion: int


# USD per 1M tokens x 10_000 = ticks per token. Where xAI publishes no cached price the full prompt
# price stands in: costs come out high rather than low, which is the safe side for quotas.
BUILTIN_TOKEN_PRICES: dict[str, TokenPrices] = {
    "grok-4.7": TokenPrices(20_000, 5_000, 60_000),
    "grok-4.6": TokenPrices(20_000, 5_000, 60_000),
    "grok-4.5": TokenPrices(20_000, 3_000, 60_000),
    "grok-4.3": TokenPrices(12_500, 2_000, 25_000),
    "grok-4.20-0309-reasoning": TokenPrices(12_500, 2_000, 25_000),
    "grok-4.20-0309-non-reasoning": TokenPrices(12_500, 2_000, 25_000),
    "grok-4.20-multi-agent-0309": TokenPrices(12_500, 2_000, 25_000),
    "grok-build-0.1": TokenPrices(10_000, 2_000, 20_000),
    # Retired on 2026-05-15 (grok-3-mini is on neither that list nor the 2026-09 price list), at
    # their last prices: ledger rows and compatible endpoints still name them, and xAI served
    # some old ids as grok-4.3 for a while.
    "grok-4-1-fast-reasoning": TokenPrices(2_000, 2_000, 5_000),
    "grok-4-1-fast-non-reasoning": TokenPrices(2_000, 2_000, 5_000),
    "grok-4-fast-reasoning": TokenPrices(2_000, 2_000, 5_000),
    "grok-4-fast-non-reasoning": TokenPrices(2_000, 2_000, 5_000),
    "grok-4-0709": TokenPrices(30_000, 30_000, 150_000),
    "grok-3": TokenPrices(30_000, 7_500, 150_000),
    "grok-3-mini": TokenPrices(3_000, 750, 5_000),
    "grok-code-fast-1": TokenPrices(2_000, 200, 15_000),  # unconfirmed (reference §9)
}

# From LONG_CONTEXT_TOKENS of prompt on (models without an entry have one price).
LONG_CONTEXT_PRICES: dict[str, TokenPrices] = {
    "grok-4.7": TokenPrices(40_000, 10_000, 120_000),
    "grok-4.6": TokenPrices(40_000, 10_000, 120_000),
    "grok-4.5": TokenPrices(40_000, 6_000, 120_000),
    "grok-4.3": TokenPrices(25_000, 4_000, 50_000),
    "grok-4.20-0309-reasoning": TokenPrices(25_000, 4_000, 50_000),
    "grok-4.20-0309-non-reasoning": TokenPrices(25_000, 4_000, 50_000),
    "grok-4.20-multi-agent-0309": TokenPrices(25_000, 4_000, 50_000),
    "grok-build-0.1": TokenPrices(20_000, 4_000, 40_000),
}


@dataclass(frozen=True, slots=True)
class ToolPrices:
    """Ticks per server-side tool call (or per X post and profile fetched). view_image,
    view_x_video and MCP calls cost tokens only."""

    web_search: int = 50_000_000  # $5 per 1,000 calls (image search at the same rate)
    code: int = 50_000_000  # $5 per 1,000 calls
    x_post: int = 50_000_000  # $5 per 1,000 posts fetched, from 2026-09-21 (no de-duplication)
    x_profile: int = 100_000_000  # $10 per 1,000 profiles fetched
    x_search: int = 50_000_000  # $5 per 1,000 calls: before 2026-09-21, for usage without post counts
    file_search: int = 25_000_000  # $2.50 per 1,000 calls
    # For reservations: the posts one X search call may fetch (its recorded default "limit" is
    # 20; quoted and thread posts can add some), and the input tokens one call's results and turn
    # may add (one recorded X search: 27,236 input tokens over 6 sub-calls).
    x_posts_per_call: int = 20
    input_tokens_per_call: int = 8_000

    def per_call(self, kind: str) -> int:
        """The most one call of a tool kind ("web", "x", "code") is allowed to cost."""
        if kind == "x":
            return max(self.x_posts_per_call * self.x_post, self.x_profile, self.x_search)
        return {"web": self.web_search, "code": self.code}[kind]

    def of(self, tools: ToolUsage) -> int:
        """What the server-side tool calls of a response cost."""
        if tools.x_posts_fetched or tools.x_users_fetched:
            x = tools.x_posts_fetched * self.x_post + tools.x_users_fetched * self.x_profile
        else:
            x = tools.x_search_calls * self.x_search
        return (
            tools.web_search_calls * self.web_search
            + tools.code_interpreter_calls * self.code
            + tools.file_search_calls * self.file_search
            + x
        )


TOOL_PRICES = ToolPrices()

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
    "grok-4.20-multi-agent": "grok-4.20-multi-agent-0309",
}

CONTEXT_WINDOWS: dict[str, int] = {
    "grok-4.7": 500_000,
    "grok-4.6": 500_000,
    "grok-4.5": 500_000,
    "grok-4.3": 1_000_000,
    "grok-4.20-0309-reasoning": 1_000_000,
    "grok-4.20-0309-non-reasoning": 1_000_000,
    "grok-4.20-multi-agent-0309": 1_000_000,
    "grok-build-0.1": 256_000,
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
        tools: ToolPrices = TOOL_PRICES,
    ) -> None:
        self.tools = tools
        self._long = dict(LONG_CONTEXT_PRICES if tokens is None else {})
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

    def token_prices(self, model: str, *, prompt_tokens: int = 0) -> TokenPrices:
        """Ticks per token for `model`, at the long-context prices from LONG_CONTEXT_TOKENS of
        prompt on (where the model has them)."""
        known = self.resolves(model)
        prices = self._tokens.get(known) if known is not None else None
        if prices is not None:
            long = self._long.get(known) if prompt_tokens >= LONG_CONTEXT_TOKENS and known else None
            return long or prices
        log.warning("no price for model %s; charging the dearest known", model)
        return TokenPrices(
            max(p.prompt for p in self._tokens.values()),
            max(p.cached for p in self._tokens.values()),
            max(p.completion for p in self._tokens.values()),
        )

    def cost_ticks(self, model: str, usage: Usage) -> int:
        """What a completed answer cost: the server's `cost_ticks` (cost_in_usd_ticks, tools
        included) when present, else computed with xAI semantics: cached tokens at the cached
        price, reasoning tokens at the completion price, plus the server-side tool calls."""
        if usage.cost_ticks is not None:
            return usage.cost_ticks
        prices = self.token_prices(model, prompt_tokens=usage.prompt_tokens)
        cached = min(usage.cached_tokens, usage.prompt_tokens)
        return (
            (usage.prompt_tokens - cached) * prices.prompt
            + cached * prices.cached
            + (usage.completion_tokens + usage.reasoning_tokens) * prices.completion
            + self.tools.of(usage.tools)
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
        prices = self.token_prices(model, prompt_tokens=prompt_tokens)
        return prompt_tokens * prices.prompt + (max_completion_tokens + reasoning_tokens) * prices.completion

    def tool_allowance_ticks(
        self, model: str, tools: Tools, *, max_calls: int, prompt_tokens: int = 0
    ) -> int:
        """For a reservation beside `estimate_ticks`: `max_calls` server-side tool calls of the
        dearest tool turned on, each with the input tokens it may add (its results, and the
        prompt read again for another agent turn, uncached). 0 when no tool is on."""
        if not tools or max_calls <= 0:
            return 0
        per_call = max(self.tools.per_call(kind) for kind in tools.kinds)
        input_tokens = prompt_tokens + self.tools.input_tokens_per_call
        prices = self.token_prices(model, prompt_tokens=prompt_tokens)
        return max_calls * (per_call + input_tokens * prices.prompt)

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
