"""CommandPlatform: SlackPlatform seen from one /grok command. The command's answer and its private
notices in the command's channel go through the command's response_url where the bot cannot post
(a DM between two people, a group DM, a private channel it is not in); the rest is SlackPlatform's.
"""

from __future__ import annotations

from collections.abc import Sequence

from adapters.slack.events import is_ts
from adapters.slack.platform import SlackPlatform
from adapters.slack.reply import SlackReply
from adapters.slack.urls import Relay
from bot.platform import Image, Place, PlatformView


class CommandPlatform(PlatformView[SlackPlatform]):
    def __init__(self, base: SlackPlatform, *, channel: str, user: str, relay: Relay | None) -> None:
        super().__init__(base)
        self.channel = channel
        self.user = user
        self.relay = relay

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

    async def post_images_privately(
        self, place: Place, images: Sequence[Image], *, text: str, user_id: str
    ) -> str:
        """The note for the caller in the command's channel may be relayed, as `post_text`'s."""
        return await self.base.post_images_privately(
            place, images, text=text, user_id=user_id, relay=self._relay_to(user_id, place)
        )

    def _relay_to(self, user_id: str, place: Place) -> Relay | None:
        """The command's response_url, for what goes privately to its caller in its channel."""
        to_caller = bool(user_id) and user_id == self.user and place.channel == self.channel
        return self.relay if to_caller else None
