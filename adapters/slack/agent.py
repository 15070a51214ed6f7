"""Slack's agent view (manifest `features.agent_view`): the prompts suggested when a person opens the
app's Messages tab, and the channel each person is viewing (`app_context_changed`, or the
`app_context` a direct message carries), told to the model with their direct-message questions.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from bot.command_registry import spec_of
from bot.platform import Incoming

# Up to four (Slack's limit), each a title and the message it sends. "help" and "usage" are command
# words, run as commands; the others are questions, one of them for the web and X search.
SUGGESTED_PROMPTS: tuple[Mapping[str, str], ...] = (
    {
        "title": "Search the news",
        "message": "What is the biggest technology news today? Search the web and X, and cite sources.",
    },
    {
        "title": "Explain something",
        "message": "Explain how a large language model writes an answer, simply, in a few short paragraphs.",
    },
    {"title": "What can you do?", "message": "help"},
    {"title": "My usage", "message": "usage"},
)
PROMPTS_TITLE = "Try asking Grok"
CHANNEL = "slack#/types/channel_id"
MESSAGE = "slack#/types/message_context"
MEMORY = 10_000


def viewed_channel(context: Any) -> str:
    """The channel first among what a person is viewing (Slack orders the entities by relevance): a
    channel entity, or the channel of a message entity; "" when none is."""
    entities = context.get("entities") if isinstance(context, Mapping) else None
    for entity in entities if isinstance(entities, list) else ():
        if not isinstance(entity, Mapping):
            continue
        value = entity.get("value")
        if entity.get("type") == CHANNEL and isinstance(value, str):
            return value
        if entity.get("type") == MESSAGE and isinstance(value, Mapping) and value.get("channel_id"):
            return str(value["channel_id"])
    return ""


def viewer_of(body: Mapping[str, Any], event: Mapping[str, Any]) -> str:
    """Who an app_context_changed is about: its `user`, else the person its authorization names."""
    if event.get("user"):
        return str(event["user"])
    for authorization in body.get("authorizations") or ():
        if isinstance(authorization, Mapping) and not authorization.get("is_bot"):
            return str(authorization.get("user_id") or "")
    return ""


class Viewing:
    """(team, user) -> the channel they are viewing, as their latest app_context_changed said."""

    def __init__(self) -> None:
        self._channels: OrderedDict[tuple[str, str], str] = OrderedDict()

    def remember(self, team: str, user: str, channel: str) -> None:
        """`channel` "" forgets: they view no channel now."""
        key = (team, user)
        self._channels.pop(key, None)
        if user and channel:
            self._channels[key] = channel
            while len(self._channels) > MEMORY:
                self._channels.popitem(last=False)

    def of(self, team: str, user: str) -> str:
        return self._channels.get((team, user), "")


def with_viewing(incoming: Incoming, channel: str) -> Incoming:
    """`incoming` with a line telling the model which channel the person is viewing; as it was when
    none is known, when it is the message's own channel, or for a command word (the engine runs it)."""
    spec = spec_of(incoming.text.strip().strip("!.?").lower())
    if not channel or channel == incoming.place.channel or (spec is not None and spec.textless):
        return incoming
    line = f"[Context: the person asking is viewing the channel <#{channel}>]"
    return replace(incoming, text=f"{incoming.text}\n\n{line}")
