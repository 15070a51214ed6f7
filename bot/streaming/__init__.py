"""Streaming answers into chats: the layout (where text is cut, what each message shows), edit
budgets per rate-limit scope, the writer that paces edits by them, Grok's tool calls as activities,
and what follows an answer's text (the code it ran, its sources).
"""

from __future__ import annotations

from bot.streaming.activities import activity_of, links_of, short_url
from bot.streaming.appendix import code_appendix, sources_markdown
from bot.streaming.budgets import EditBudget, EditBudgets, Shares, Turn
from bot.streaming.layout import cut_point, split_message
from bot.streaming.writer import StreamWriter

__all__ = [
    "EditBudget",
    "EditBudgets",
    "Shares",
    "StreamWriter",
    "Turn",
    "activity_of",
    "code_appendix",
    "cut_point",
    "links_of",
    "short_url",
    "sources_markdown",
    "split_message",
]
