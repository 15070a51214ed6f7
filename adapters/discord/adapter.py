"""The Discord adapter: its lifecycle (log in, sync commands, connect, drain, stop) and the gateway's
messages and slash commands checked against the allow-lists and handed to the engine.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Sequence
from datetime import datetime
from typing import Any

import discord

from adapters.discord.access import REFUSAL, Access, asker_of
from adapters.discord.client import (
    MAX_RATELIMIT_TIMEOUT,
    MESSAGE_CONTENT_HELP,
    TOKEN_HELP,
    GrokDiscordClient,
    invite_url,
)
from adapters.discord.commands import is_private, register_commands
from adapters.discord.event_platform import MessagePlatform
from adapters.discord.gateway import point_discord_py_at, use_bot_gateway
from adapters.discord.incoming import command_author, incoming_from_command, incoming_from_message
from adapters.discord.interaction import InteractionPlatform
from adapters.discord.pacing import GLOBAL_PER_S, SPAN_S, GlobalPacer
from adapters.discord.places import is_thread
from adapters.discord.platform import DiscordPlatform
from adapters.discord.refusals import discord_errors
from adapters.discord.sync import sync_commands
from adapters.discord.webhook import InteractionWebhook, utc_now
from bot.engine import Engine
from bot.errors import PlatformError
from bot.platform import Author, Command, Incoming
from bot.settings import Settings

log = logging.getLogger(__name__)


class DiscordAdapter:
    """grokbot on Discord for the composition root: one discord.py client, its slash commands, and
    the long-lived `platform` that jobs post through."""

    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        *,
        clock: Callable[[], datetime] = utc_now,
        guild_ready_timeout: float = 2.0,
        global_limit_per_s: int = GLOBAL_PER_S,
        global_span_s: float = SPAN_S,
    ) -> None:
        if settings.discord_token is None:
            raise PlatformError("DISCORD_TOKEN is not set")
        self.settings = settings
        self.engine = engine
        self.access = Access.from_settings(settings)
        self._clock = clock
        self.client = GrokDiscordClient(
            on_setup=self._sync_commands, on_message=self._on_message, guild_ready_timeout=guild_ready_timeout
        )
        register_commands(self.client.tree, self._run_command)
        # Discord's global limit, at this instance's share (the composition root subscribes set_share).
        self.pacer = GlobalPacer(
            per_s=global_limit_per_s, span_s=global_span_s, application_id=lambda: self.client.application_id
        )
        self.pacer.install(self.client.http)
        self.platform = DiscordPlatform(self.client)
        self.synced: list[str] = []  # scopes ("global" or guild ids) re-synced by the last start
        self.invite_url = ""
        self.webhook_stall_timeout = MAX_RATELIMIT_TIMEOUT  # see InteractionWebhook.call
        self._gateway: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopping = False

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Log in, sync commands if they changed, connect; return when the gateway is READY."""
        point_discord_py_at(self.settings)
        await self._login()
        await use_bot_gateway(self.client, self.settings)
        assert self.client.application_id is not None
        self.invite_url = invite_url(self.client.application_id)
        log.info("Discord: invite the bot with %s", self.invite_url)
        await self._connect()

    async def _login(self) -> None:
        """GET /users/@me and the application (the commands are synced in between: setup_hook)."""
        assert self.settings.discord_token is not None
        try:
            await self.client.login(self.settings.discord_token.get_secret_value())
        except discord.LoginFailure:
            await self.client.close()
            raise PlatformError(TOKEN_HELP) from None
        except (discord.HTTPException, OSError) as exc:
            await self.client.close()
            status = getattr(exc, "status", "")
            raise PlatformError(f"Discord login failed: {type(exc).__name__} {status}".rstrip()) from None

    async def _connect(self) -> None:
        """Open the gateway; return once it is READY, or raise what closed it before."""
        self._gateway = asyncio.create_task(self.client.connect(reconnect=True), name="discord-gateway")
        ready = asyncio.create_task(self.client.wait_until_ready(), name="discord-ready")
        await asyncio.wait({self._gateway, ready}, return_when=asyncio.FIRST_COMPLETED)
        if not ready.done():
            ready.cancel()
            await asyncio.gather(ready, return_exceptions=True)
            await self.wait()
            raise PlatformError("the Discord gateway closed before it was ready")

    async def wait(self) -> None:
        """Until the gateway stops; a fatal close (4014 intents, 4004 token) as PlatformError with the fix."""
        if self._gateway is None:
            return
        try:
            await self._gateway
        except asyncio.CancelledError:
            if self._stopping and self._gateway.cancelled():
                return  # drain() closed it
            raise
        except discord.PrivilegedIntentsRequired:
            log.error(MESSAGE_CONTENT_HELP)
            await self.client.close()
            raise PlatformError(MESSAGE_CONTENT_HELP) from None
        except discord.ConnectionClosed as exc:
            await self.client.close()
            if exc.code == 4004:
                raise PlatformError(TOKEN_HELP) from None
            raise PlatformError(f"the Discord gateway closed with code {exc.code}") from None

    @property
    def in_flight(self) -> int:
        """Messages and commands being answered right now."""
        return len(self._tasks)

    def ready(self) -> bool:
        return (
            self.client.is_ready()
            and not self.client.is_closed()
            and self._gateway is not None
            and not self._gateway.done()
        )

    async def idle(self, *, within: float | None = None) -> bool:
        """Wait until no message or command is being answered; False if `within` s passed first."""
        try:
            async with asyncio.timeout(within):
                while self._tasks:
                    await asyncio.wait(set(self._tasks))
        except TimeoutError:
            return False
        return True

    async def drain(self) -> None:
        """Take no new messages or commands and close the gateway (code 1000), so that Discord hands
        the bot's events to another session; REST stays open for the answers in flight to finish."""
        self._stopping = True
        gateway = self._gateway
        if gateway is not None and not gateway.done():
            gateway.cancel()  # the connect loop would reconnect after the close
            await asyncio.gather(gateway, return_exceptions=True)
        ws = self.client.ws
        if ws is not None and ws.open:
            await ws.close(code=1000)
        log.info("Discord gateway closed; answers in flight go on")

    async def stop(self, *, grace: float = 10.0) -> None:
        """Let in-flight answers finish for up to `grace` seconds, then cancel them and disconnect."""
        self._stopping = True  # new events are left alone from here on
        if not await self.idle(within=grace):
            pending = list(self._tasks)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        await self.platform.close()
        await self.client.close()
        if self._gateway is not None:
            await asyncio.gather(self._gateway, return_exceptions=True)

    def _spawn(self, work: Coroutine[Any, Any, None], *, name: str) -> None:
        if self._stopping:
            work.close()
            return
        task = asyncio.get_running_loop().create_task(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("Discord handler %s failed", task.get_name(), exc_info=task.exception())

    async def _sync_commands(self) -> None:
        self.synced = await sync_commands(self.client, self.client.tree, self.settings.discord_guild_ids)

    # -- who may ask ----------------------------------------------------------------------------

    def _allows(
        self, user: discord.User | discord.Member, author: Author, *, guild_id: int | None, channel: Any
    ) -> bool:
        """The allow-lists' decision, made alike for messages and slash commands."""
        asker = asker_of(user, author, guild_id=guild_id, channel=channel, settings=self.settings)
        return self.access.allows(asker)

    # -- slash commands -------------------------------------------------------------------------

    async def _run_command(
        self,
        interaction: discord.Interaction[Any],
        command: Command,
        *,
        attachments: Sequence[discord.Attachment] = (),
    ) -> None:
        """Answer in a task of the adapter's own from the start, so that `idle` and `stop` count the
        acknowledgement too."""
        work = self._answer_command(interaction, command, attachments)
        self._spawn(work, name=f"discord-command-{interaction.id}")

    async def _answer_command(
        self,
        interaction: discord.Interaction[Any],
        command: Command,
        attachments: Sequence[discord.Attachment],
    ) -> None:
        """Access check, defer within 3 s, then the engine."""
        author = command_author(interaction, self.settings)
        channel = interaction.channel or discord.Object(interaction.channel_id or 0)
        allowed = self._allows(interaction.user, author, guild_id=interaction.guild_id, channel=channel)
        ephemeral = is_private(command)
        original_id = await self._acknowledge(interaction, command, allowed=allowed, ephemeral=ephemeral)
        if original_id is None:
            return
        incoming = incoming_from_command(
            interaction, command, author=author, channel=channel, attachments=attachments
        )
        if incoming.place.thread:
            self.platform.note_thread(incoming.place.thread, is_thread=True)
        webhook = InteractionWebhook(
            interaction,
            ephemeral=ephemeral,
            original_id=original_id,
            clock=self._clock,
            stall_timeout=self.webhook_stall_timeout,
        )
        await self._handle_command(incoming, webhook, attachments)

    async def _handle_command(
        self, incoming: Incoming, webhook: InteractionWebhook, attachments: Sequence[discord.Attachment]
    ) -> None:
        """The engine answers through the interaction; "thinking…" never stays behind."""
        wrapper = InteractionPlatform(self.platform, webhook, attachments={a.url: a for a in attachments})
        try:
            await self.engine.handle(incoming, wrapper)
        finally:
            await wrapper.settle()

    async def _acknowledge(
        self, interaction: discord.Interaction[Any], command: Command, *, allowed: bool, ephemeral: bool
    ) -> str | None:
        """Within Discord's 3 s: the refusal, or a defer (Discord shows "thinking…"). Once deferred, the
        original response's id ("" when Discord did not say); else None."""
        try:
            async with discord_errors(f"answering /{command.name}"):
                if not allowed:
                    await interaction.response.send_message(REFUSAL, ephemeral=True)
                    return None
                response = await interaction.response.defer(ephemeral=ephemeral, thinking=True)
        except PlatformError as exc:
            log.warning("Discord: could not acknowledge /%s in time: %s", command.name, exc)
            return None
        return str(response.message_id) if response is not None and response.message_id else ""

    # -- messages -------------------------------------------------------------------------------

    async def _on_message(self, message: discord.Message) -> None:
        me = self.client.user
        if me is None or self._stopping:
            return
        incoming = incoming_from_message(message, bot_id=me.id, settings=self.settings)
        if incoming is None:
            return
        guild_id = message.guild.id if message.guild is not None else None
        if not self._allows(message.author, incoming.author, guild_id=guild_id, channel=message.channel):
            return
        if incoming.place.thread:
            self.platform.note_thread(incoming.place.thread, is_thread=is_thread(message.channel))
        self._spawn(self._handle_message(incoming, message), name=f"discord-message-{message.id}")

    async def _handle_message(self, incoming: Incoming, message: discord.Message) -> None:
        await self.engine.handle(incoming, MessagePlatform(self.platform, message))
