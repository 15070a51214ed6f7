"""Storage for conversations: their history, linked messages, a turn's context in one call, place
settings, event de-duplication and feedback. Queries return values; table rows never leave it.

Modules: `conversations` (conversations, history, message links), `context` (Conversations: a
turn's context, cached), `places` (place settings), `events` (delivery ids, feedback),
`open_answers` (answers in progress, for closing after a crash).
"""

from __future__ import annotations

from bot.store.context import Conversations, TurnContext
from bot.store.conversations import (
    ConversationRef,
    HistoryMessage,
    Links,
    add_turns,
    assistant_turn,
    link_messages,
)
from bot.store.events import EVENT_RETENTION, claim_event, prune_events, record_feedback
from bot.store.open_answers import (
    add_open_answer,
    move_open_answer,
    open_answers,
    remove_open_answer,
    take_open_answer,
)
from bot.store.places import PlaceSettings, SettingLayers

__all__ = [
    "EVENT_RETENTION",
    "ConversationRef",
    "Conversations",
    "HistoryMessage",
    "Links",
    "PlaceSettings",
    "SettingLayers",
    "TurnContext",
    "add_open_answer",
    "add_turns",
    "assistant_turn",
    "claim_event",
    "link_messages",
    "move_open_answer",
    "open_answers",
    "prune_events",
    "record_feedback",
    "remove_open_answer",
    "take_open_answer",
]
