"""The Discord platform seen from one event: that event's attachments are read through discord.py,
and everything a view does not change goes to the long-lived DiscordPlatform. `MessagePlatform` is the
view for a user's message (texts reply to it); interaction.py has the one for a slash command.
"""

from __future__ import annotations

from collections.abc import Mapping

import discord

from adapters.discord.platform import DiscordPlatform
from adapters.discord.refusals import discord_errors
from bot.platform import Attachment, Place, PlatformView


class EventPlatform(PlatformView[DiscordPlatform]):
    """DiscordPlatform seen from one event: that event's attachments are read through discord.py,
    and everything a subclass does not change goes to the long-lived platform."""

    def __init__(self, base: DiscordPlatform, attachments: Mapping[str, discord.Attachment]) -> None:
        super().__init__(base)
        self._attachments = dict(attachments)

    async def download(self, attachment: Attachment) -> bytes:
        found = self._attachments.get(attachment.url)
        if found is None:
            return await self.base.download(attachment)
        async with discord_errors("downloading an attachment"):
            return await found.read()


class MessagePlatform(EventPlatform):
    """For one user message: texts (errors, notices) reply to it."""

    def __init__(self, base: DiscordPlatform, message: discord.Message) -> None:
        super().__init__(base, {a.url: a for a in message.attachments})
        self._message = message

    async def post_text(self, place: Place, text: str, *, private_to: str = "") -> str:
        return await self.base.post_text(place, text, private_to=private_to, reply_to=str(self._message.id))
