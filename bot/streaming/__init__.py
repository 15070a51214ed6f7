"""Streaming answers into chats: the layout (where text is cut, what each message shows), edit
budgets per rate-limit scope, and the writer that paces edits by them.
"""

from __future__ import annotations

from bot.streaming.budgets import EditBudget, EditBudgets
from bot.streaming.layout import cut_point, split_message
from bot.streaming.writer import StreamWriter

__all__ = [
    "EditBudget",
    "EditBudgets",
    "StreamWriter",
    "cut_point",
    "split_message",
]
