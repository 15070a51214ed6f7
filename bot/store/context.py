"""A turn's context in one call into storage: the conversation at a place (found, or created on
first use), its recent history and the place's settings. What rarely changes is cached per process.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from bot.db import Sessions
from bot.platform import Place
from bot.store.conversations import (
    ConversationRef,
    HistoryMessage,
    conversation_of_message,
    create_conversation,
    find_conversation,
    forget_conversation,
    read_conversation,
    read_history,
)
from bot.store.places import (
    PlaceSettings,
    SettingLayers,
    read_place_settings,
    read_setting_layers,
    set_place_settings,
)

__all__ = ["Conversations", "TurnContext"]

CACHE_SIZE = 10_000  # conversations and place settings remembered per process
SETTINGS_TTL_S = 60.0  # an admin's change reaches every instance within this
V = TypeVar("V")


@dataclass(frozen=True)
class TurnContext:
    """What a conversation turn reads before it asks Grok."""

    conversation: ConversationRef
    history: list[HistoryMessage]  # the newest messages, oldest first
    settings: PlaceSettings  # the channel's, else the workspace's


class Conversations:
    """The conversations the engine answers in. Conversation rows are never deleted, so a found one
    is remembered; place settings are remembered per channel (every new thread of a channel would
    otherwise read them again) and re-read at most once a minute."""

    def __init__(
        self,
        sessions: Sessions,
        *,
        clock: Callable[[], datetime],
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self._monotonic = monotonic
        self._known: dict[str, ConversationRef] = {}
        self._settings: dict[str, tuple[float, PlaceSettings]] = {}

    async def turn_context(self, place: Place) -> TurnContext:
        """The context of a turn at `place`. Reads share one session and never write: a known
        conversation with fresh settings costs one SELECT (its history); only a new conversation
        costs a write (and has no history to read)."""
        conversation = self._known.get(place.key)
        settings = self._fresh_settings(place)
        history: list[HistoryMessage] = []
        async with self._sessions() as session:
            if conversation is None:
                conversation = await read_conversation(session, place)
            if conversation is not None:
                history = await read_history(session, conversation.id)
            if settings is None:
                settings = await read_place_settings(session, place)
                _remember(self._settings, _channel_key(place), (self._monotonic(), settings))
        if conversation is None:
            conversation = await create_conversation(self._sessions, place, now=self._clock())
        _remember(self._known, place.key, conversation)
        return TurnContext(conversation, history, settings)

    async def find(self, place: Place) -> ConversationRef | None:
        """The conversation at `place`, if one was ever started there."""
        found = self._known.get(place.key) or await find_conversation(self._sessions, place)
        if found is not None:
            _remember(self._known, place.key, found)
        return found

    async def of_message(self, *, platform: str, channel: str, message_id: str) -> ConversationRef | None:
        """The conversation a platform message belongs to (a reply to it continues that one)."""
        found = await conversation_of_message(
            self._sessions, platform=platform, channel=channel, message_id=message_id
        )
        if found is not None:
            _remember(self._known, found.place.key, found)
        return found

    async def forget(self, place: Place) -> int:
        """Delete the history of the conversation at `place` (reset); how many messages went."""
        return await forget_conversation(self._sessions, place)

    async def setting_layers(self, place: Place) -> SettingLayers:
        """`place`'s settings as set for its channel and for its workspace, read now."""
        async with self._sessions() as session:
            return await read_setting_layers(session, place)

    async def change_settings(
        self, place: Place, changes: Mapping[str, str | None], *, whole_workspace: bool, by: str
    ) -> None:
        """Store an admin's change; this process sees it at once, the others within SETTINGS_TTL_S."""
        await set_place_settings(
            self._sessions, place, changes, whole_workspace=whole_workspace, by=by, now=self._clock()
        )
        if not whole_workspace:
            self._settings.pop(_channel_key(place), None)
            return
        workspace = f"{place.platform}:{place.workspace}:"
        for key in [key for key in self._settings if key.startswith(workspace)]:
            del self._settings[key]

    def _fresh_settings(self, place: Place) -> PlaceSettings | None:
        cached = self._settings.get(_channel_key(place))
        if cached is None or self._monotonic() - cached[0] >= SETTINGS_TTL_S:
            return None
        return cached[1]


def _channel_key(place: Place) -> str:
    return f"{place.platform}:{place.workspace}:{place.channel}"


def _remember(cache: dict[str, V], key: str, value: V) -> None:
    """Keep `value`, forgetting the oldest entry when the cache is full."""
    if key not in cache and len(cache) >= CACHE_SIZE:
        cache.pop(next(iter(cache)))
    cache[key] = value
