"""Conversation history for a model call: who said what, the system prompt, and trimming the oldest
turns so that the prompt fits the model's context window with the answer's budget kept free.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bot.grok import ChatMessage, ImagePart, Part, TextPart
from bot.store import HistoryMessage

DEFAULT_SYSTEM_PROMPT = (
    "You are Grok, a helpful assistant in a group chat on {platform}. Several people may talk to "
    "you in one conversation: each user message starts with the author's name in square brackets. "
    "Answer the latest message. Use Markdown sparingly; keep answers concise unless asked for depth."
)
# Characters per token for estimates: English prose averages about 4; code and other scripts less.
CHARS_PER_TOKEN = 3.5
MESSAGE_OVERHEAD_TOKENS = 4
IMAGE_TOKENS = 1792  # the most one image can cost (xAI: 256 to 1,792 prompt tokens)
HISTORY_SOURCES = 5  # of an earlier answer's sources, sent again with it


def estimate_tokens(text: str) -> int:
    return int(len(text) / CHARS_PER_TOKEN) + MESSAGE_OVERHEAD_TOKENS


def speaker_line(name: str, text: str) -> str:
    return f"[{name}] {text}" if name else text


def answer_text(turn: HistoryMessage) -> str:
    """An earlier answer as the model reads it again: its text, which keeps its inline citations
    `[[1]](url)`; where it cited none inline, a compact line of its first sources, so that a
    follow-up ("what does the second source say?") can be answered."""
    if not turn.sources or any(source.url in turn.text for source in turn.sources):
        return turn.text
    urls = " ".join(source.url for source in turn.sources[:HISTORY_SOURCES])
    return f"{turn.text}\n\nSources: {urls}"


@dataclass(frozen=True)
class Prompt:
    messages: tuple[ChatMessage, ...]
    estimated_tokens: int
    dropped_turns: int  # the oldest turns left out to fit


def build_prompt(
    *,
    system: str,
    history: Sequence[HistoryMessage],
    user_name: str,
    user_text: str,
    images: Sequence[ImagePart] = (),
    context_window: int,
    answer_budget: int,
) -> Prompt:
    """The messages for one model call: system, as much recent history as fits, the new turn."""
    new_text = speaker_line(user_name, user_text)
    content: str | tuple[Part, ...] = new_text
    if images:
        content = (TextPart(new_text), *images)
    fixed = estimate_tokens(system) + estimate_tokens(new_text) + IMAGE_TOKENS * len(images)
    available = context_window - answer_budget - fixed
    kept: list[ChatMessage] = []
    used = 0
    for turn in reversed(history):
        text = answer_text(turn) if turn.role == "assistant" else speaker_line(turn.author_name, turn.text)
        cost = estimate_tokens(text)
        if used + cost > available:
            break
        kept.append(ChatMessage(role=turn.role, content=text))
        used += cost
    kept.reverse()
    # A conversation must not open with the assistant: drop a leading answer whose question went.
    while kept and kept[0].role == "assistant":
        used -= estimate_tokens(str(kept.pop(0).content))
    messages = (ChatMessage("system", system), *kept, ChatMessage("user", content))
    return Prompt(messages, fixed + used, len(history) - len(kept))
