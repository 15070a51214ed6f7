"""CommandPlatform: SlackPlatform seen from one /grok command. The command's answer and its private
notices in the command's channel go through the command's response_url where the bot cannot post
(a DM between two people, a group DM, a private channel it is not in); the rest is SlackPlatform's.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from adapters.slack.events import is_ts
from adapters.slack.platform import SlackPlatform
from adapters.slack.reply import SlackReply
from adapters.slack.urls import Relay
from bot.platform import Attachment, Capabilities, ChannelMessage, Image, Place


class CommandPlatform:
    def __init__(self, base: SlackPlatform, *, channel: str, user: str, relay: Relay | None) -> None:
        self.base = base
        self.channel = channel
        self.user = user
        self.relay = relay

    @property
    def name(self) -> str:
        return self.base.name

    @property
    def capabilities(self) -> Capabilities:
        return self.base.capabilities

    def rate_scope(self, place: Place) -> str:
        return self.base.rate_scope(place)

    async def start_reply(self, place: Place, *, reply_to: str = "") -> SlackReply:
        """The command's answer (top-level in its channel) may be relayed; other replies are not."""
        answers_command = place.channel == self.channel and not is_ts(place.thread)
        return await self.base.start_reply(
            place, reply_to=reply_to, relay=self.relay if answers_command else None
        )

    async def post_text(self, place: Place, text: str, *, private_to: str = "") -> str:
        """Notices for the caller in the command's channel may be relayed; other texts are not."""
        return await self.base.post_text(
            place, text, private_to=private_to, relay=self._relay_to(private_to, place)
        )

    async def post_images(self, place: Place, images: Sequence[Image], *, text: str = "") -> str:
        return await self.base.post_images(place, images, text=text)

    async def post_images_privately(
        self, place: Place, images: Sequence[Image], *, text: str, user_id: str
    ) -> str:
        """The note for the caller in the command's channel may be relayed, as `post_text`'s."""
        return await self.base.post_images_privately(
            place, images, text=text, user_id=user_id, relay=self._relay_to(user_id, place)
        )

    async def direct_message(self, user_id: str, text: str) -> str:
        return await self.base.direct_message(user_id, text)

    async def download(self, attachment: Attachment) -> bytes:
        return await self.base.download(attachment)

    async def channel_history(
        self, place: Place, *, since: datetime, until: datetime, limit: int = 2000
    ) -> Sequence[ChannelMessage]:
        return await self.base.channel_history(place, since=since, until=until, limit=limit)

    def _relay_to(self, user_id: str, place: Place) -> Relay | None:
        """The command's response_url, for what goes privately to its caller in its channel."""
        to_caller = bool(user_id) and user_id == self.user and place.channel == self.channel
        return self.relay if to_caller else None
