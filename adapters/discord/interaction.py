"""The per-interaction Platform for slash commands: the first reply streams into the deferred original
response (edit_original_response), later ones are channel messages replying to the previous one, and
once the 15-minute interaction token is gone everything continues as normal channel messages.
Private texts (errors, /usage) become ephemeral while the token lasts.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import discord

from adapters.discord.platform import (
    MARKER,
    MAX_CONTENT,
    MAX_RATELIMIT_TIMEOUT,
    ChannelReply,
    DiscordPlatform,
    EventPlatform,
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
        message = await self.webhook(
            "sending a follow-up",
            lambda: self.interaction.followup.send(content=text, ephemeral=ephemeral, wait=True),
        )
        return str(message.id)

    async def settle(self) -> None:
        """After the engine is done: never leave "thinking…" behind."""
        if self.state == "loading":
            try:
                await self.webhook("deleting the response", self.interaction.delete_original_response)
                self.state = "deleted"
            except (TokenExpired, PlatformError) as exc:
                log.debug("could not delete an unused response: %s", type(exc).__name__)

    # -- Platform -------------------------------------------------------------------------------

    async def start_reply(self, place: Place, *, reply_to: str = "") -> InteractionReply | ChannelReply:
        """The first reply is the deferred response; continuations are channel messages."""
        if self.state == "loading" and self.token_valid():
            self.state = "used"
            return InteractionReply(self, place)
        return await self.base.start_reply(place, reply_to=reply_to or self.original_id)

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
            return await self.base.post_text(place, text, reply_to=self.original_id)

    async def post_images(self, place: Place, images: Sequence[Image], *, text: str = "") -> str:
        if self.state == "loading":
            batches = upload_batches(images)
            try:
                await self.edit_original(text[:MAX_CONTENT] or None, files=image_files(batches[0]))
            except TokenExpired:
                return await self.base.post_images(place, images, text=text)
            for batch in batches[1:]:
                target = await self.base.target(place)
                await self.base.send(
                    target, content=None, files=image_files(batch), reply_to=self.original_id
                )
            return self.original_id
        return await self.base.post_images(place, images, text=text)


class InteractionReply:
    """The deferred original response, streamed into; a channel message takes over if the token goes."""

    def __init__(self, owner: InteractionPlatform, place: Place) -> None:
        self._owner = owner
        self._place = place
        self._fallback: ChannelReply | None = None
        self._shown = ""
        self._status_at = float("-inf")

    @property
    def message_id(self) -> str:
        if self._fallback is not None and self._fallback.message_id:
            return self._fallback.message_id
        return self._owner.original_id

    async def _take_over(self) -> ChannelReply:
        if self._fallback is None:
            self._fallback = await self._owner.base.start_reply(self._place, reply_to=self._owner.original_id)
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
                    target = await self._owner.base.target(self._place)
                    await self._owner.base.send(
                        target, content=None, files=image_files(batch), reply_to=self.message_id
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
