"""The per-interaction Platform for slash commands: the first reply streams into the deferred original
response (edit_original_response), later ones are channel messages replying to the previous one, and
once the 15-minute interaction token is gone everything continues as normal channel messages.
Private texts (errors, /usage) become ephemeral while the token lasts.

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
from datetime import UTC, datetime, timedelta
from typing import Any

import discord

from adapters.discord.client import is_thread
from adapters.discord.platform import (
    MARKER,
    MAX_CONTENT,
    MAX_RATELIMIT_TIMEOUT,
    NO_PINGS,
    ChannelReply,
    DiscordPlatform,
    EventPlatform,
    StreamedMessage,
    discord_errors,
    failure_text,
    image_files,
    upload_batches,
)
from bot.errors import PlatformError
from bot.platform import Image, Place
from bot.streaming import split_message

log = logging.getLogger(__name__)

# Stop using the token a little before Discord does, so that no edit straddles the expiry.
TOKEN_MARGIN = timedelta(seconds=30)
EXPIRED_CODES = {50027, 10015}  # Invalid Webhook Token, Unknown Webhook


def utc_now() -> datetime:
    return datetime.now(UTC)


def _names(permissions: Sequence[str]) -> str:
    """discord.py's permission names as Discord shows them: "Send Messages, Read Message History"."""
    return ", ".join(name.replace("_", " ").title() for name in permissions)


class TokenExpired(Exception):
    """The interaction webhook is unusable (token expired, or stalled): continue with the bot token."""


class InteractionPlatform(EventPlatform):
    """For one deferred interaction: the first reply is the interaction's response."""

    def __init__(
        self,
        base: DiscordPlatform,
        interaction: discord.Interaction[Any],
        *,
        ephemeral: bool,
        original_id: str = "",
        attachments: Mapping[str, discord.Attachment] | None = None,
        clock: Callable[[], datetime] = utc_now,
        monotonic: Callable[[], float] = time.monotonic,
        stall_timeout: float = MAX_RATELIMIT_TIMEOUT,
    ) -> None:
        super().__init__(base, attachments or {})
        self.stall_timeout = stall_timeout
        self.interaction = interaction
        self.ephemeral = ephemeral
        self.original_id = original_id
        self.state = "loading"  # loading (Discord shows "thinking…") | used | deleted
        self._clock = clock
        self.monotonic = monotonic
        self._expired = False
        self._noted: set[str] = set()  # what was logged about the channel (once per interaction)

    # -- the interaction token ------------------------------------------------------------------

    def token_valid(self) -> bool:
        return not self._expired and self._clock() < self.interaction.expires_at - TOKEN_MARGIN

    async def webhook(self, action: str, call: Callable[[], Any]) -> Any:
        """Run one interaction-webhook call; TokenExpired when the token is gone or the call stalls.

        discord.py's webhook adapter sleeps through any 429 (it ignores max_ratelimit_timeout), so a
        call still waiting after `stall_timeout` is abandoned and the answer moves to channel messages.
        """
        if not self.token_valid():
            raise TokenExpired
        try:
            async with asyncio.timeout(self.stall_timeout), discord_errors(action):
                return await call()
        except TimeoutError:
            self._expired = True
            log.warning("interaction %s: %s stalled; continuing in the channel", self.interaction.id, action)
            raise TokenExpired from None
        except PlatformError as exc:
            cause = exc.__cause__
            if isinstance(cause, discord.HTTPException) and (
                cause.code in EXPIRED_CODES or cause.status == 401
            ):
                self._expired = True
                log.info("interaction %s: token expired, continuing in the channel", self.interaction.id)
                raise TokenExpired from exc
            raise

    async def edit_original(self, content: str | None, *, files: Sequence[discord.File] = ()) -> None:
        def call() -> Any:
            if files:
                return self.interaction.edit_original_response(content=content, attachments=list(files))
            return self.interaction.edit_original_response(content=content)

        message = await self.webhook("editing the response", call)
        self.original_id = str(message.id)
        self.state = "used"

    async def followup(self, text: str, *, ephemeral: bool) -> str:
        return str((await self.followup_message(text, ephemeral=ephemeral)).id)

    async def followup_message(
        self, content: str | None, *, files: Sequence[discord.File] = (), ephemeral: bool | None = None
    ) -> discord.WebhookMessage:
        """A follow-up message, to be edited later if need be; private when `ephemeral` says so
        (by default, when the response is)."""
        private = self.ephemeral if ephemeral is None else ephemeral
        given: dict[str, Any] = {}
        if content:
            given["content"] = content
        if files:
            given["files"] = list(files)

        def call() -> Any:
            return self.interaction.followup.send(
                **given, ephemeral=private, allowed_mentions=NO_PINGS, wait=True
            )

        message: discord.WebhookMessage = await self.webhook("sending a follow-up", call)
        return message

    async def settle(self) -> None:
        """After the engine is done: never leave "thinking…" behind."""
        if self.state == "loading":
            try:
                await self.webhook("deleting the response", self.interaction.delete_original_response)
                self.state = "deleted"
            except (TokenExpired, PlatformError) as exc:
                log.debug("could not delete an unused response: %s", type(exc).__name__)

    # -- the channel ------------------------------------------------------------------------------

    def missing_permissions(self, *, files: bool = False) -> list[str]:
        """What the bot lacks (per the interaction's app_permissions) to post a reply in the channel,
        with files if asked; [] when it may. A DM with the bot is always open: Discord's app_permissions
        there carry no View Channel or Send Messages bits."""
        if self.interaction.guild_id is None:
            return []
        have = self.interaction.app_permissions
        if have.administrator:
            return []
        send = "send_messages_in_threads" if is_thread(self.interaction.channel) else "send_messages"
        needed = ["view_channel", send, "read_message_history"] + (["attach_files"] if files else [])
        return [name for name in needed if not getattr(have, name)]

    def channel_open(self, what: str, *, files: bool = False) -> bool:
        """True when `what` may go into the channel as a bot message; else False (logged once) while the
        token lasts, and PlatformError (logged once) once it is gone: then nothing can deliver it."""
        missing = self.missing_permissions(files=files)
        if not missing:
            return True
        if not self.token_valid():
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
        return PlatformError(problem)

    def _where(self) -> str:
        return f"interaction {self.interaction.id} in channel {self.interaction.channel_id}"

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
        if self.channel_open("images" if files else "a message", files=bool(files)):
            target = await self.base.target(place)
            sent = await self.base.send(target, content=content, files=files, reply_to=reply_to, ping=ping)
            return str(sent.id)
        try:
            message = await self.followup_message(content, files=files)
        except TokenExpired:
            raise self.undeliverable("images" if files else "a message", files=bool(files)) from None
        return str(message.id)

    # -- Platform -------------------------------------------------------------------------------

    async def start_reply(
        self, place: Place, *, reply_to: str = ""
    ) -> InteractionReply | ChannelReply | FollowupReply:
        """The first reply is the deferred response; continuations are channel messages (follow-ups
        where the bot may not post)."""
        if self.state == "loading" and self.token_valid():
            self.state = "used"
            return InteractionReply(self, place)
        return await self.continuation(place, reply_to=reply_to or self.original_id)

    async def post_text(self, place: Place, text: str, *, private_to: str = "") -> str:
        """Into the response while it is unused; privately as an ephemeral follow-up while the token lasts.
        Past Discord's 2,000 characters the rest follows in further messages."""
        parts = split_message(text, MAX_CONTENT) if text else ["…"]
        first = await self._post_part(place, parts[0], private_to=private_to)
        for part in parts[1:]:
            await self._post_part(place, part, private_to=private_to)
        return first

    async def _post_part(self, place: Place, text: str, *, private_to: str) -> str:
        try:
            if self.state == "loading" and (self.ephemeral or not private_to):
                await self.edit_original(text)
                return self.original_id
            if self.state == "loading":
                # A public "thinking…" cannot turn private: remove it, then answer ephemerally.
                await self.webhook("deleting the response", self.interaction.delete_original_response)
                self.state = "deleted"
            return await self.followup(text, ephemeral=bool(private_to) or self.ephemeral)
        except TokenExpired:
            self.channel_open("a message")  # raises (logged) when the bot may not post there
            return await self.base.post_text(place, text, reply_to=self.original_id)

    async def post_images(self, place: Place, images: Sequence[Image], *, text: str = "") -> str:
        batches = upload_batches(images)
        if self.state == "loading":
            try:
                await self.edit_original(text[:MAX_CONTENT] or None, files=image_files(batches[0]))
            except TokenExpired:
                self.channel_open("images", files=True)  # raises (logged) when the bot may not post there
                return await self.base.post_images(place, images, text=text)
            for batch in batches[1:]:
                await self.extra_message(
                    place, content=None, files=image_files(batch), reply_to=self.original_id
                )
            return self.original_id
        if self.channel_open("images", files=True):
            return await self.base.post_images(place, images, text=text)
        first = ""
        for batch in batches:
            content = (text[:MAX_CONTENT] or None) if not first else None
            sent = await self.extra_message(place, content=content, files=image_files(batch))
            first = first or sent
        return first


class InteractionReply:
    """The deferred original response, streamed into; a channel message takes over if the token goes."""

    def __init__(self, owner: InteractionPlatform, place: Place) -> None:
        self._owner = owner
        self._place = place
        self._fallback: ChannelReply | FollowupReply | None = None
        self._shown = ""
        self._status_at = float("-inf")

    @property
    def message_id(self) -> str:
        if self._fallback is not None and self._fallback.message_id:
            return self._fallback.message_id
        return self._owner.original_id

    async def _take_over(self) -> ChannelReply | FollowupReply:
        if self._fallback is None:
            self._fallback = await self._owner.continuation(self._place, reply_to=self._owner.original_id)
        return self._fallback

    async def status(self, text: str) -> None:
        """A status line in the response (it replaces Discord's "thinking…"), at most once per interval."""
        if self._fallback is not None:
            await self._fallback.status(text)
            return
        now = self._owner.monotonic()
        if self._shown or now - self._status_at < self._owner.capabilities.edit_interval:
            return
        self._status_at = now
        try:
            await self._owner.edit_original(text[:MAX_CONTENT])
        except TokenExpired:
            await (await self._take_over()).status(text)
        except PlatformError as exc:
            log.debug("status edit failed: %s", exc)  # cosmetic: the answer's edits follow

    async def update(self, text: str) -> None:
        if self._fallback is None:
            try:
                await self._owner.edit_original(text + MARKER)
                self._shown = text
                return
            except TokenExpired:
                pass
        await (await self._take_over()).update(text)
        self._shown = text

    async def finish(self, text: str, *, images: Sequence[Image] = ()) -> None:
        if self._fallback is None:
            batches = upload_batches(images) if images else [[]]
            try:
                await self._owner.edit_original(
                    text or ("" if images else "…"), files=image_files(batches[0])
                )
            except TokenExpired:
                pass
            else:
                self._shown = text
                for batch in batches[1:]:
                    await self._owner.extra_message(
                        self._place, content=None, files=image_files(batch), reply_to=self.message_id
                    )
                return
        await (await self._take_over()).finish(text, images=images)

    async def fail(self, message: str) -> None:
        if self._fallback is None:
            content, note = failure_text(self._shown, message)
            try:
                await self._owner.edit_original(content)
                if note:
                    # A new message: private like the deferred response when that was ephemeral.
                    await self._owner.followup(note, ephemeral=self._owner.ephemeral)
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

    async def _extra(
        self, *, content: str | None, files: Sequence[discord.File] = (), reply_to: str, ping: bool = True
    ) -> None:
        await self._owner.extra_message(
            self._place, content=content, files=files, reply_to=reply_to, ping=ping
        )

    async def _show(self, content: str, *, files: Sequence[discord.File] = ()) -> None:
        message = self._message
        try:
            if message is None:
                self._message = await self._owner.followup_message(content or None, files=files)
            elif files:
                self._message = await self._owner.webhook(
                    "editing a follow-up",
                    lambda: message.edit(content=content or None, attachments=list(files)),
                )
            else:
                self._message = await self._owner.webhook(
                    "editing a follow-up", lambda: message.edit(content=content)
                )
        except TokenExpired:
            raise self._owner.undeliverable("the rest of an answer", files=bool(files)) from None
