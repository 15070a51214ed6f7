"""Storage for conversations: their history, linked messages, a turn's context in one call, place
settings, event de-duplication and feedback. Queries return values; table rows never leave it.

Modules: `conversations` (conversations, history, message links), `context` (Conversations: a
turn's context, cached), `places` (place settings), `events` (delivery ids, feedback).
"""

from __future__ import annotations

from bot.store.context import Conversations, TurnContext
from bot.store.conversations import (
    ConversationRef,
    HistoryMessage,
    Links,
    add_turns,
    assistant_turn,
    conversation_for,
    conversation_of_message,
    find_conversation,
    forget_conversation,
    link_messages,
    recent_turns,
)
from bot.store.events import EVENT_RETENTION, claim_event, feedback_counts, prune_events, record_feedback
from bot.store.places import PlaceSettings, SettingLayers, set_system_prompt

__all__ = [
    "EVENT_RETENTION",
    "ConversationRef",
    "Conversations",
    "HistoryMessage",
    "Links",
    "PlaceSettings",
    "SettingLayers",
    "TurnContext",
    "add_turns",
    "assistant_turn",
    "claim_event",
    "conversation_for",
    "conversation_of_message",
    "feedback_counts",
    "find_conversation",
    "forget_conversation",
    "link_messages",
    "prune_events",
    "recent_turns",
    "record_feedback",
    "set_system_prompt",
]
