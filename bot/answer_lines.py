"""The one INFO line per answer (streamed, deferred or images), written when the answer is recorded:
where (ids, never text), which model, the tokens, the cost and how long it took. The same fields
are the record's attributes (`extra`), so the JSON log format (bot/logs.py) has each as a key.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

from bot.grok import Usage
from bot.platform import Place
from bot.quotas import format_usd
from bot.settings import TICKS_PER_USD

__all__ = ["AnswerLine", "log_answer"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AnswerLine:
    """One answer as the log tells it. Its field names are the JSON keys."""

    answer: str  # "chat" (streamed), "deferred" or "image"
    place: str  # Place.key: platform:workspace:channel:thread, all ids
    user: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    reasoning_tokens: int
    cached_tokens: int
    images: int
    cost_ticks: int
    cost_usd: float
    first_token_s: float | None  # streamed answers: until Grok's first token, reasoning or answer
    total_s: float  # from the request to Grok until the answer was in the chat
    finish: str  # Grok's finish reason, or "stopped" (by the person)

    @property
    def text(self) -> str:
        """`answer chat in slack:T1:C1:: user U1, grok-4.3, 12 in / 40 out / 0 reasoning tokens,
        $0.00011, first token 0.41 s, total 1.20 s (stop)`."""
        made = (
            f"{self.images} images"
            if self.answer == "image"
            else f"{self.prompt_tokens} in / {self.completion_tokens} out / {self.reasoning_tokens} "
            "reasoning tokens"
        )
        parts = [f"answer {self.answer} in {self.place}: user {self.user}", self.model, made]
        parts.append(format_usd(self.cost_ticks))
        if self.first_token_s is not None:
            parts.append(f"first token {self.first_token_s:.2f} s")
        parts.append(f"total {self.total_s:.2f} s")
        return ", ".join(parts) + (f" ({self.finish})" if self.finish else "")


def log_answer(
    kind: str,
    place: Place,
    *,
    user: str,
    model: str,
    cost_ticks: int,
    total_s: float,
    usage: Usage | None = None,
    first_token_s: float | None = None,
    images: int = 0,
    finish: str = "",
) -> None:
    """Log the answer of `kind` in `place` at INFO, as one line and as JSON keys."""
    usage = usage or Usage()
    line = AnswerLine(
        kind,
        place.key,
        user,
        model,
        usage.prompt_tokens,
        usage.completion_tokens,
        usage.reasoning_tokens,
        usage.cached_tokens,
        images,
        cost_ticks,
        cost_ticks / TICKS_PER_USD,
        None if first_token_s is None else round(first_token_s, 3),
        round(total_s, 3),
        finish,
    )
    log.info(line.text, extra=asdict(line))
