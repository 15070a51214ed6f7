"""Where a Discord conversation is: channels and threads as `Place` values, and `Target`, where a
Place's messages go.

Place convention (the engine stores these; keep them stable):
- guild channel, a mention:   Place("discord", guild, channel, thread=<the mentioning message id>)
- inside a thread channel:    Place("discord", guild, <parent channel>, thread=<thread id>)
- slash command in a channel: Place("discord", guild, channel, "")
- direct messages:            Place("discord", "dm", <DM channel id>, "")
A thread made with "Create Thread" from a message has that message's id, so a conversation started by
a mention continues, unchanged, in a thread created from the mention.
"""

from __future__ import annotations

from typing import Any

import discord

from bot.platform import Place

PLATFORM = "discord"
THREAD_TYPES = {
    discord.ChannelType.public_thread,
    discord.ChannelType.private_thread,
    discord.ChannelType.news_thread,
}


def is_thread(channel: Any) -> bool:
    return isinstance(channel, discord.Thread) or getattr(channel, "type", None) in THREAD_TYPES


def place_of(channel: Any, guild_id: int | None, *, message_id: str = "") -> Place:
    """The Place of a message or command in `channel` (per the convention above)."""
    if guild_id is None:
        return Place(PLATFORM, "dm", str(channel.id))
    if is_thread(channel) and getattr(channel, "parent_id", None) is not None:
        return Place(PLATFORM, str(guild_id), str(channel.parent_id), str(channel.id))
    return Place(PLATFORM, str(guild_id), str(channel.id), message_id)


class Target:
    """Where a Place's messages go: a channel id, and the message a reply links to by default."""

    __slots__ = ("channel", "guild", "reply_to")

    def __init__(self, channel: int, guild: int | None, reply_to: str = "") -> None:
        self.channel = channel
        self.guild = guild
        self.reply_to = reply_to
