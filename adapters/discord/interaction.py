"""The per-interaction Platform for slash commands: the first reply streams into the deferred original
response, later ones are channel messages replying to the previous one, and once the 15-minute
interaction token is gone everything continues as normal channel messages. Private texts (errors,
/usage) become ephemeral while the token lasts.

Where the interaction's `app_permissions` show that the bot may not post (or reply, or upload) in the
channel, the continuation (parts past 2,000 characters, further image batches, a failure note) goes
out as interaction follow-ups instead, which need no channel permission: without a reply link, and
only while the token lasts. Past it, such an answer cannot be delivered: that is logged and raised as
PlatformError, without drawing 403s from Discord.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence

import discord

from adapters.discord.event_platform import EventPlatform
from adapters.discord.messages import (
    MARKER,
    MAX_CONTENT,
    StreamedMessage,
    failure_text,
    image_files,
    no_previews,
    reasoning_messages,
    upload_batches,
)
from adapters.discord.places import is_thread
from adapters.discord.platform import ChannelReply, DiscordPlatform
from adapters.discord.refusals import CANNOT_FINISH
from adapters.discord.webhook import InteractionWebhook, TokenExpired
from bot.errors import PlatformError
from bot.platform import Activity, Image, Place
from bot.streaming import split_message

log = logging.getLogger(__name__)


def _names(permissions: Sequence[str]) -> str:
    """discord.py's permission names as Discord shows them: "Send Messages, Read Message History"."""
    return ", ".join(name.replace("_", " ").title() for name in permissions)


class InteractionPlatform(EventPlatform):
    """For one deferred interaction: the first reply is the interaction's response."""

    def __init__(
        self,
        base: DiscordPlatform,
        webhook: InteractionWebhook,
        *,
        attachments: Mapping[str, discord.Attachment] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(base, attachments or {})
        self.webhook = webhook
        self.monotonic = monotonic
        self._noted: set[str] = set()  # what was logged about the channel (once per interaction)

    async def settle(self) -> None:
        """After the engine is done: never leave "thinking…" behind."""
        if self.webhook.state == "loading":
            try:
                await self.webhook.delete_original()
            except (TokenExpired, PlatformError) as exc:
                log.debug("could not delete an unused response: %s", type(exc).__name__)

    # -- the channel ------------------------------------------------------------------------------

    def missing_permissions(self, *, files: bool = False) -> list[str]:
        """What the bot lacks (per the interaction's app_permissions) to post a reply in the channel,
        with files if asked; [] when it may. A DM with the bot is always open: Discord's app_permissions
        there carry no View Channel or Send Messages bits."""
        interaction = self.webhook.interaction
        if interaction.guild_id is None:
            return []
        have = interaction.app_permissions
        if have.administrator:
            return []
        send = "send_messages_in_threads" if is_thread(interaction.channel) else "send_messages"
        needed = ["view_channel", send, "read_message_history"] + (["attach_files"] if files else [])
        return [name for name in needed if not getattr(have, name)]

    def channel_open(self, what: str, *, files: bool = False) -> bool:
        """True when `what` may go into the channel as a bot message; else False (logged once) while the
        token lasts, and PlatformError (logged once) once it is gone: then nothing can deliver it."""
        missing = self.missing_permissions(files=files)
        if not missing:
            return True
        if not self.webhook.token_valid():
            raise self.undeliverable(what, files=files)
        if "follow-ups" not in self._noted:
            self._noted.add("follow-ups")
            log.info("%s: the bot lacks %s; continuing with follow-ups", self._where(), _names(missing))
        return False

    def undeliverable(self, what: str, *, files: bool = False) -> PlatformError:
        """The error (logged as a warning, once) for what neither the webhook nor the channel can take."""
        missing = self.missing_permissions(files=files) or self.missing_permissions()
        problem = (
            f"{self._where()}: cannot deliver {what}: the interaction token has expired and the bot "
            f"lacks {_names(missing)} in the channel, so the user will not see it"
        )
        if "undeliverable" not in self._noted:
            self._noted.add("undeliverable")
            log.warning("%s", problem)
        return PlatformError(problem, user_text=CANNOT_FINISH)

    def _where(self) -> str:
        interaction = self.webhook.interaction
        return f"interaction {interaction.id} in channel {interaction.channel_id}"

    async def continuation(self, place: Place, *, reply_to: str) -> ChannelReply | FollowupReply:
        """A further message of the answer: a channel message replying to `reply_to` where the bot may
        post, else an interaction follow-up."""
        if self.channel_open("the rest of an answer"):
            return await self.base.start_reply(place, reply_to=reply_to)
        return FollowupReply(self, place)

    async def extra_message(
        self,
        place: Place,
        *,
        content: str | None,
        files: Sequence[discord.File] = (),
        reply_to: str = "",
        ping: bool = True,
    ) -> str:
        """One complete further message (an image batch, a note) as `continuation` would place it."""
        what = "images" if files else "a message"
        if self.channel_open(what, files=bool(files)):
            target = await self.base.target(place)
            sent = await self.base.send(target, content=content, files=files, reply_to=reply_to, ping=ping)
            return str(sent.id)
        try:
            message = await self.webhook.send_followup(content, files=files)
        except TokenExpired:
            raise self.undeliverable(what, files=bool(files)) from None
        return str(message.id)

    # -- Platform -------------------------------------------------------------------------------

    async def start_reply(
        self, place: Place, *, reply_to: str = ""
    ) -> InteractionReply | ChannelReply | FollowupReply:
        """The first reply is the deferred response; continuations are channel messages (follow-ups
        where the bot may not post)."""
        if self.webhook.state == "loading" and self.webhook.token_valid():
            self.webhook.state = "used"
            return InteractionReply(self, place)
        return await self.continuation(place, reply_to=reply_to or self.webhook.original_id)

    async def post_text(self, place: Place, text: str, *, private_to: str = "") -> str:
        """Into the response while it is unused; privately as an ephemeral follow-up while the token lasts.
        Past Discord's 2,000 characters the rest follows in further messages."""
        parts = split_message(text, MAX_CONTENT) if text else ["…"]
        first = await self._post_part(place, parts[0], private_to=private_to)
        for part in parts[1:]:
            await self._post_part(place, part, private_to=private_to)
        return first

    async def _post_part(self, place: Place, text: str, *, private_to: str) -> str:
        webhook = self.webhook
        try:
            if webhook.state == "loading" and (webhook.ephemeral or not private_to):
                await webhook.edit_original(text)
                return webhook.original_id
            if webhook.state == "loading":
                # A public "thinking…" cannot turn private: remove it, then answer ephemerally.
                await webhook.delete_original()
            private = bool(private_to) or webhook.ephemeral
            return str((await webhook.send_followup(text, ephemeral=private)).id)
        except TokenExpired:
            self.channel_open("a message")  # raises (logged) when the bot may not post there
            return await self.base.post_text(place, text, reply_to=webhook.original_id)

    async def post_images(self, place: Place, images: Sequence[Image], *, text: str = "") -> str:
        if self.webhook.state == "loading":
            return await self._images_in_response(place, images, text=text)
        if self.channel_open("images", files=True):
            return await self.base.post_images(place, images, text=text)
        first = ""
        for batch in upload_batches(images):
            content = (text[:MAX_CONTENT] or None) if not first else None
            sent = await self.extra_message(place, content=content, files=image_files(batch))
            first = first or sent
        return first

    async def _images_in_response(self, place: Place, images: Sequence[Image], *, text: str) -> str:
        """The first batch with `text` in the unused response, further batches after it."""
        batches = upload_batches(images)
        try:
            await self.webhook.edit_original(text[:MAX_CONTENT] or None, files=image_files(batches[0]))
        except TokenExpired:
            self.channel_open("images", files=True)  # raises (logged) when the bot may not post there
            return await self.base.post_images(place, images, text=text)
        for batch in batches[1:]:
            await self.extra_message(
                place, content=None, files=image_files(batch), reply_to=self.webhook.original_id
            )
        return self.webhook.original_id


class InteractionReply:
    """The deferred original response, streamed into; a channel message takes over if the token goes."""

    def __init__(self, owner: InteractionPlatform, place: Place) -> None:
        self._owner = owner
        self._webhook = owner.webhook
        self._place = place
        self._fallback: ChannelReply | FollowupReply | None = None
        self._shown = ""
        self._status_at = float("-inf")
        self._later: asyncio.Task[None] | None = None  # the latest status, once the interval allows
        self._waiting = ""
        self._answering = False
        self._reasoning = ""
        self._activity_due = False  # a search began: its status goes without waiting its turn

    @property
    def message_id(self) -> str:
        if self._fallback is not None and self._fallback.message_id:
            return self._fallback.message_id
        return self._webhook.original_id

    async def _take_over(self) -> ChannelReply | FollowupReply:
        if self._fallback is None:
            self._fallback = await self._owner.continuation(self._place, reply_to=self._webhook.original_id)
        return self._fallback

    async def activity(self, activity: Activity) -> bool:
        """Not shown natively (ShowsActivities): the status line that follows says it, at once."""
        if self._fallback is not None:
            return await self._fallback.activity(activity)
        self._activity_due = activity.status == "in_progress"
        return False

    async def status(self, text: str) -> None:
        """A status line in the response (it replaces Discord's "thinking…"), at most once per
        interval: a newer one waits for its turn, so that what Grok is searching shows; a search
        just begun goes at once."""
        self._waiting = ""
        if self._fallback is not None:
            await self._fallback.status(text)
            return
        due, self._activity_due = self._activity_due, False
        now = self._owner.monotonic()
        wait = self._status_at + self._owner.capabilities.edit_interval - now
        if self._shown or self._answering:
            return
        if wait > 0 and not due:
            self._waiting = text
            if self._later is None or self._later.done():
                self._later = asyncio.create_task(self._status_after(wait))
            return
        self._status_at = now
        try:
            await self._webhook.edit_original(text[:MAX_CONTENT])
        except TokenExpired:
            await (await self._take_over()).status(text)
        except PlatformError as exc:
            log.debug("status edit failed: %s", exc)  # cosmetic: the answer's edits follow

    async def _status_after(self, wait: float) -> None:
        """The newest waiting status once the interval allows, and any newer one that came meanwhile."""
        while self._waiting:
            await asyncio.sleep(wait)
            if self._waiting:
                await self.status(self._waiting)
            wait = self._status_at + self._owner.capabilities.edit_interval - self._owner.monotonic()

    async def reasoning(self, text: str) -> None:
        """The reasoning summary: hidden in spoilers after the final text (KeepsReasoning)."""
        self._reasoning = text

    async def _post_reasoning(self) -> None:
        """The kept reasoning in follow-up messages: private where the response is."""
        reasoning, self._reasoning = self._reasoning, ""
        try:
            for piece in reasoning_messages(reasoning):
                if self._webhook.ephemeral:
                    await self._webhook.send_followup(piece)
                else:
                    await self._owner.extra_message(
                        self._place, content=piece, reply_to=self.message_id, ping=False
                    )
        except (PlatformError, TokenExpired) as exc:  # the answer is delivered: this is a courtesy
            log.info("the reasoning could not be posted: %s", type(exc).__name__)

    async def update(self, text: str) -> None:
        self._answering = True  # a status waiting for its turn is not shown any more
        if self._fallback is None:
            try:
                await self._webhook.edit_original(no_previews(text) + MARKER)
                self._shown = text
                return
            except TokenExpired:
                pass
        await (await self._take_over()).update(text)
        self._shown = text

    async def finish(self, text: str, *, images: Sequence[Image] = ()) -> None:
        self._answering = True
        if self._fallback is None:
            batches = upload_batches(images) if images else [[]]
            try:
                await self._webhook.edit_original(
                    no_previews(text) or ("" if images else "…"), files=image_files(batches[0])
                )
            except TokenExpired:
                pass
            else:
                self._shown = text
                for batch in batches[1:]:
                    await self._owner.extra_message(
                        self._place, content=None, files=image_files(batch), reply_to=self.message_id
                    )
                await self._post_reasoning()
                return
        fallback = await self._take_over()
        await fallback.reasoning(self._reasoning)
        await fallback.finish(text, images=images)

    async def fail(self, message: str) -> None:
        self._answering = True
        if self._fallback is None:
            content, note = failure_text(no_previews(self._shown), message)
            try:
                await self._webhook.edit_original(content)
                if note:
                    # A new message: private like the deferred response when that was ephemeral.
                    await self._webhook.send_followup(note)
                return
            except TokenExpired:
                pass
        await (await self._take_over()).fail(message)


class FollowupReply(StreamedMessage):
    """A further message of the answer as an interaction follow-up, for a channel the bot may not post
    in: sent on the first update, then edited through the interaction webhook. It cannot reply to the
    previous message. Once the token is gone, PlatformError (nothing can show it)."""

    def __init__(self, owner: InteractionPlatform, place: Place) -> None:
        self._owner = owner
        self._place = place
        self._message: discord.WebhookMessage | None = None

    async def status(self, text: str) -> None:
        """Nothing: typing is a channel permission too, and a status would cost an edit."""

    async def activity(self, activity: Activity) -> bool:
        """Nothing shown (as its statuses): False, so the writer treats it as a status."""
        return False

    async def _extra(
        self, *, content: str | None, files: Sequence[discord.File] = (), reply_to: str, ping: bool = True
    ) -> None:
        await self._owner.extra_message(
            self._place, content=content, files=files, reply_to=reply_to, ping=ping
        )

    async def _show(self, content: str, *, files: Sequence[discord.File] = ()) -> None:
        webhook = self._owner.webhook
        try:
            if self._message is None:
                self._message = await webhook.send_followup(content or None, files=files)
            else:
                self._message = await webhook.edit_followup(self._message, content, files=files)
        except TokenExpired:
            raise self._owner.undeliverable("the rest of an answer", files=bool(files)) from None
