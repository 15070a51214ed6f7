"""One slash command's interaction webhook: the deferred original response and follow-ups, used while
the 15-minute interaction token lasts. A token gone, or a call that stalls, raises `TokenExpired`: the
answer then continues with the bot token, as channel messages.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, TypeVar

import discord

from adapters.discord.client import MAX_RATELIMIT_TIMEOUT
from adapters.discord.messages import NO_PINGS
from adapters.discord.refusals import EXPIRED_TOKEN_CODES, discord_errors
from bot.errors import PlatformError

log = logging.getLogger(__name__)

# Stop using the token a little before Discord does, so that no edit straddles the expiry.
TOKEN_MARGIN = timedelta(seconds=30)

T = TypeVar("T")
# loading: Discord shows "thinking…" · used: the response shows text · deleted: it is gone
ResponseState = Literal["loading", "used", "deleted"]


def utc_now() -> datetime:
    return datetime.now(UTC)


class TokenExpired(Exception):
    """The interaction webhook is unusable (token expired, or stalled): continue with the bot token."""


class InteractionWebhook:
    """The webhook calls of one deferred interaction, and what its original response shows."""

    def __init__(
        self,
        interaction: discord.Interaction[Any],
        *,
        ephemeral: bool,
        original_id: str = "",
        clock: Callable[[], datetime] = utc_now,
        stall_timeout: float = MAX_RATELIMIT_TIMEOUT,
    ) -> None:
        self.interaction = interaction
        self.ephemeral = ephemeral  # the deferred response is private to the caller
        self.original_id = original_id
        self.state: ResponseState = "loading"
        self._clock = clock
        self._stall_timeout = stall_timeout
        self._expired = False

    def token_valid(self) -> bool:
        return not self._expired and self._clock() < self.interaction.expires_at - TOKEN_MARGIN

    async def call(self, action: str, request: Callable[[], Awaitable[T]]) -> T:
        """Run one webhook request; TokenExpired when the token is gone or the request stalls.

        discord.py's webhook adapter sleeps through any 429 (it ignores max_ratelimit_timeout), so a
        request still waiting after the stall timeout is abandoned and the answer moves to channel
        messages."""
        if not self.token_valid():
            raise TokenExpired
        try:
            async with asyncio.timeout(self._stall_timeout), discord_errors(action):
                return await request()
        except TimeoutError:
            self._expired = True
            log.warning("interaction %s: %s stalled; continuing in the channel", self.interaction.id, action)
            raise TokenExpired from None
        except PlatformError as exc:
            cause = exc.__cause__
            if isinstance(cause, discord.HTTPException) and (
                cause.code in EXPIRED_TOKEN_CODES or cause.status == 401
            ):
                self._expired = True
                log.info("interaction %s: token expired, continuing in the channel", self.interaction.id)
                raise TokenExpired from exc
            raise

    async def edit_original(self, content: str | None, *, files: Sequence[discord.File] = ()) -> None:
        def request() -> Awaitable[discord.InteractionMessage]:
            if files:
                return self.interaction.edit_original_response(content=content, attachments=list(files))
            return self.interaction.edit_original_response(content=content)

        message = await self.call("editing the response", request)
        self.original_id = str(message.id)
        self.state = "used"

    async def delete_original(self) -> None:
        await self.call("deleting the response", self.interaction.delete_original_response)
        self.state = "deleted"

    async def send_followup(
        self, content: str | None, *, files: Sequence[discord.File] = (), ephemeral: bool | None = None
    ) -> discord.WebhookMessage:
        """A follow-up message, private when `ephemeral` says so (by default, when the response is)."""
        private = self.ephemeral if ephemeral is None else ephemeral
        given: dict[str, Any] = {}
        if content:
            given["content"] = content
        if files:
            given["files"] = list(files)

        def request() -> Awaitable[discord.WebhookMessage]:
            return self.interaction.followup.send(
                **given, ephemeral=private, allowed_mentions=NO_PINGS, wait=True
            )

        return await self.call("sending a follow-up", request)

    async def edit_followup(
        self, message: discord.WebhookMessage, content: str, *, files: Sequence[discord.File] = ()
    ) -> discord.WebhookMessage:
        def request() -> Awaitable[discord.WebhookMessage]:
            if files:
                return message.edit(content=content or None, attachments=list(files))
            return message.edit(content=content)

        return await self.call("editing a follow-up", request)
