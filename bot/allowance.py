"""What an answer may use, in output tokens at its model's price: its text, the reasoning the model
may do first, and server-side tool calls; the whole allowance where the budget covers it, else one
cut to what the budget buys, with the model asked to think less.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, replace

from bot.grok import TokenPrices
from bot.quotas import Ask

__all__ = [
    "ANSWER_TOKENS",
    "MIN_ANSWER_TOKENS",
    "Allowance",
    "answer_ask",
    "full_allowance",
    "reasoning_allowance",
]

ANSWER_TOKENS = 4096
# The smallest answer worth starting: with less than this left (and the prompt), a request is refused.
MIN_ANSWER_TOKENS = 256
# Reasoning tokens are billed like output but not capped by max_completion_tokens: reserve for them.
REASONING_ALLOWANCE = {"none": 0, "low": 4_000, "high": 16_000}
# Most current Grok models reason even when not asked to (grok-4*, grok-3-mini, grok-code-fast):
# reserve for that too, or concurrent requests could settle far past a limit.
DEFAULT_REASONING_ALLOWANCE = 8_000
NON_REASONING = ("non-reasoning", "grok-3", "grok-2")
# The models whose thinking `reasoning_effort: none` turns off (xai-api reference §2); the other
# models that take reasoning_effort are asked for `low` when the budget cuts an answer.
THINKING_OFF = ("grok-4.3*",)


def reasoning_allowance(model: str, effort: str | None) -> int:
    """Tokens to reserve for reasoning, which max_completion_tokens does not cap."""
    if effort is not None:
        return REASONING_ALLOWANCE[effort]
    if "non-reasoning" in model or (model.startswith(NON_REASONING[1:]) and "mini" not in model):
        return 0
    return DEFAULT_REASONING_ALLOWANCE


@dataclass(frozen=True)
class Allowance:
    """Output tokens an answer may use. `answer` goes out as max_completion_tokens (Chat
    Completions); `reasoning` is reserved beside it, since only the Responses API's
    max_output_tokens (answer + reasoning) covers reasoning; `tools` is the server-side tool-call
    allowance counted as the output tokens its price buys, so that one budget cuts all three."""

    answer: int
    reasoning: int
    effort: str | None  # the reasoning_effort to send
    tools: int = 0

    @property
    def total(self) -> int:
        return self.answer + self.reasoning + self.tools

    def with_tools(self, ticks: int, *, out_price: int) -> Allowance:
        """This allowance and a tool-call allowance of `ticks` (PriceBook.tool_allowance_ticks),
        counted as the output tokens (at `out_price` ticks each) that it could buy instead."""
        return replace(self, tools=-(-ticks // out_price) if ticks else 0)

    def tool_ticks(self, out_price: int) -> int:
        """What the tool-call share may spend: divided by one call's price, the calls to allow."""
        return self.tools * out_price

    def within(self, tokens: int, *, model: str, takes_effort: bool) -> Allowance:
        """This allowance cut to `tokens` in all: the model asked to think as little as it can,
        then each share in proportion, the text never more than uncut. Whatever is left over goes
        to the reasoning share, which max_completion_tokens cannot hold the model to."""
        if tokens >= self.total:
            return self
        effort = _least_effort(model, self.effort) if takes_effort else self.effort
        reasoning = self.reasoning if effort == self.effort else reasoning_allowance(model, effort)
        shares = (self.answer, reasoning, self.tools)
        answer, _, tools = (share * tokens // sum(shares) for share in shares)
        answer = max(1, min(answer, self.answer))
        return Allowance(answer, tokens - answer - tools, effort, tools)


def full_allowance(model: str, effort: str | None) -> Allowance:
    """The whole allowance of an answer from `model` at `effort` (None: the model's default)."""
    return Allowance(ANSWER_TOKENS, reasoning_allowance(model, effort), effort)


def answer_ask(model: str, prices: TokenPrices, *, prompt_tokens: int, allowance: Allowance) -> Ask:
    """The reservation an answer asks for: its prompt in any case, then the allowance, in output
    tokens, down to the smallest answer worth starting."""
    return Ask(
        kind="chat",
        model=model,
        base_ticks=prompt_tokens * prices.prompt,
        unit_ticks=prices.completion,
        units=allowance.total,
        least_units=min(MIN_ANSWER_TOKENS, allowance.total),
    )


def _least_effort(model: str, asked: str | None) -> str:
    # Someone who asked to see the model think still sees it (at `low`); otherwise it is turned
    # off where the model allows that.
    if asked is None and any(fnmatch.fnmatchcase(model, pattern) for pattern in THINKING_OFF):
        return "none"
    return "low"
