"""grokbot on Discord: `DiscordAdapter(settings, engine)` logs in, syncs the slash commands when they
changed, connects to the gateway, and hands messages and commands to the engine.

For the composition root:

    adapter = DiscordAdapter(settings, engine)
    await adapter.start()        # returns once the gateway is READY; PlatformError says what to fix
    adapter.platform             # the long-lived Platform for jobs (deferred answers, digests)
    adapter.ready()              # for /readyz
    await adapter.wait()         # until the gateway stops for good (raises PlatformError on a fatal close)
    await adapter.stop()         # finishes in-flight answers (grace period), then closes the connection
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Sequence
from datetime import datetime
from typing import Any, Literal

import aiohttp
import discord
import yarl

from adapters.discord.client import (
    MESSAGE_CONTENT_HELP,
    TOKEN_HELP,
    Access,
    GrokDiscordClient,
    attachment_of,
    author_of,
    channel_ids,
    incoming_from_message,
    is_thread,
    member_roles,
    place_of,
)
from adapters.discord.commands import PRIVATE_COMMANDS, canonical_commands, register_commands
from adapters.discord.interaction import InteractionPlatform, utc_now
from adapters.discord.platform import (
    MAX_RATELIMIT_TIMEOUT,
    PLATFORM,
    DiscordPlatform,
    MessagePlatform,
    discord_errors,
)
from bot.engine import Engine
from bot.errors import PlatformError
from bot.platform import Command, Incoming, Place
from bot.settings import Settings

__all__ = ["INVITE_PERMISSIONS", "DiscordAdapter", "DiscordPlatform", "bot_gateway", "invite_url"]

log = logging.getLogger(__name__)

INVITE_PERMISSIONS = discord.Permissions(
    view_channel=True,
    send_messages=True,
    send_messages_in_threads=True,
    create_public_threads=True,
    embed_links=True,
    attach_files=True,
    read_message_history=True,
    use_application_commands=True,
)
REFUSAL = "I'm not enabled here. The bot's operator decides which servers, channels and roles can use me."


def invite_url(client_id: int) -> str:
    """The OAuth2 URL that adds the bot with the permissions its features need."""
    return discord.utils.oauth_url(
        client_id, permissions=INVITE_PERMISSIONS, scopes=("bot", "applications.commands")
    )


def point_discord_py_at(settings: Settings) -> None:
    """DISCORD_API_BASE_URL and DISCORD_GATEWAY_URL (class attributes: they apply to the whole process).
    Without an explicit DISCORD_GATEWAY_URL, `DiscordAdapter.start` replaces the gateway after login."""
    discord.http.Route.BASE = settings.discord_api_base_url.rstrip("/")
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(settings.discord_gateway_url)


async def bot_gateway(client: discord.Client, *, fallback: str) -> str:
    """The gateway URL from GET /gateway/bot, as Discord's docs ask (a plain discord.Client never asks):
    used when DISCORD_GATEWAY_URL is not set, so DISCORD_API_BASE_URL alone decides both. `fallback`
    (the setting's default) when the call fails."""
    try:
        _, url, limits = await client.http.get_bot_gateway()
    except (discord.DiscordException, aiohttp.ClientError, OSError, TimeoutError) as exc:
        log.warning("Discord: GET /gateway/bot failed (%s); connecting to %s", type(exc).__name__, fallback)
        return fallback
    if not isinstance(url, str) or not url.startswith(("ws://", "wss://")):
        log.warning("Discord: GET /gateway/bot answered %r; connecting to %s", url, fallback)
        return fallback
    log.info("Discord: gateway %s (from GET /gateway/bot)", url)
    total, remaining = limits["total"], limits["remaining"]
    if remaining <= max(total // 10, 1):
        log.warning(
            "Discord: only %d of %d gateway session starts (IDENTIFY) left until the daily reset in %d "
            "min; when none are left, Discord resets the bot token",
            remaining,
            total,
            limits["reset_after"] // 60_000,
        )
    return url


class DiscordAdapter:
    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        *,
        clock: Callable[[], datetime] = utc_now,
        guild_ready_timeout: float = 2.0,
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
        self.platform = DiscordPlatform(self.client)
        self.synced: list[str] = []  # scopes ("global" or guild ids) re-synced by the last start
        self.invite_url = ""
        self.webhook_stall_timeout = MAX_RATELIMIT_TIMEOUT  # see InteractionPlatform.webhook
        self._gateway: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopping = False

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Log in, sync commands if they changed, connect; return when the gateway is READY."""
        assert self.settings.discord_token is not None
        point_discord_py_at(self.settings)
        try:
            await self.client.login(self.settings.discord_token.get_secret_value())
        except discord.LoginFailure:
            await self.client.close()
            raise PlatformError(TOKEN_HELP) from None
        except (discord.HTTPException, OSError) as exc:
            await self.client.close()
            status = getattr(exc, "status", "")
            raise PlatformError(f"Discord login failed: {type(exc).__name__} {status}".rstrip()) from None
        assert self.client.application_id is not None
        if "discord_gateway_url" not in self.settings.model_fields_set:
            url = await bot_gateway(self.client, fallback=self.settings.discord_gateway_url)
            discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(url)
        self.invite_url = invite_url(self.client.application_id)
        log.info("Discord: invite the bot with %s", self.invite_url)
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

    async def stop(self, *, grace: float = 10.0) -> None:
        """Let in-flight answers finish for up to `grace` seconds, then cancel them and disconnect."""
        self._stopping = True  # new events are left alone from here on
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=grace)
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

    # -- slash commands -------------------------------------------------------------------------

    async def _sync_commands(self) -> None:
        """Guild sync (instant) for DISCORD_GUILD_IDS, else global; only when the definitions changed."""
        tree, app_id = self.client.tree, self.client.application_id
        assert app_id is not None
        scopes: list[discord.Object | None] = [
            discord.Object(int(g)) for g in self.settings.discord_guild_ids
        ]
        if scopes:
            await self._warn_about_global_commands(app_id)
        for guild in scopes or [None]:
            name = "global" if guild is None else str(guild.id)
            try:
                async with discord_errors(f"syncing {name} commands"):
                    if guild is None:
                        theirs = await self.client.http.get_global_commands(app_id)
                    else:
                        tree.copy_global_to(guild=guild)
                        theirs = await self.client.http.get_guild_commands(app_id, guild.id)
                    ours = [command.to_dict(tree) for command in tree.get_commands(guild=guild)]
                    scope: Literal["global", "guild"] = "global" if guild is None else "guild"
                    if canonical_commands(ours, scope=scope) == canonical_commands(theirs, scope=scope):
                        log.info("Discord: %s slash commands are up to date", name)
                        continue
                    await tree.sync(guild=guild)
            except PlatformError as exc:
                log.warning("Discord: could not sync %s slash commands: %s", name, exc)
                continue
            self.synced.append(name)
            log.info("Discord: synced %d slash commands (%s)", len(ours), name)

    async def _warn_about_global_commands(self, app_id: int) -> None:
        """Global commands left from a run without DISCORD_GUILD_IDS show beside the guild ones."""
        try:
            async with discord_errors("listing global commands"):
                existing = await self.client.http.get_global_commands(app_id)
        except PlatformError as exc:
            log.debug("Discord: could not list global slash commands: %s", exc)
            return
        if existing:
            names = ", ".join(sorted(f"/{c['name']}" for c in existing))
            log.warning(
                "Discord: this application also has %d global slash commands (%s). With DISCORD_GUILD_IDS "
                "set, grokbot syncs guild commands only, so these show a second time in those servers' "
                "command pickers. grokbot does not delete them; to clear them, bulk-overwrite the global "
                "list with an empty one: PUT %s/applications/%s/commands with the body [] and the header "
                "'Authorization: Bot <DISCORD_TOKEN>'.",
                len(existing),
                names,
                discord.http.Route.BASE,
                app_id,
            )

    async def _run_command(
        self,
        interaction: discord.Interaction[Any],
        command: Command,
        *,
        attachments: Sequence[discord.Attachment] = (),
    ) -> None:
        """Access check, defer within 3 s, then the engine in the background."""
        if self._stopping:
            return
        user, guild_id = interaction.user, interaction.guild_id
        author = author_of(
            user, self.settings, manage_guild=bool(guild_id) and interaction.permissions.manage_guild
        )
        channel = interaction.channel
        allowed = self.access.allows(
            guild=str(guild_id) if guild_id else None,
            channels=channel_ids(channel) if channel is not None else [str(interaction.channel_id)],
            roles=member_roles(user),
            is_admin=author.is_admin,
            is_operator=self.settings.is_admin(PLATFORM, author.id),
        )
        ephemeral = command.name in PRIVATE_COMMANDS
        try:
            async with discord_errors(f"answering /{command.name}"):
                if not allowed:
                    await interaction.response.send_message(REFUSAL, ephemeral=True)
                    return
                response = await interaction.response.defer(ephemeral=ephemeral, thinking=True)
        except PlatformError as exc:
            log.warning("Discord: could not acknowledge /%s in time: %s", command.name, exc)
            return
        if channel is not None:
            place = place_of(channel, guild_id)
            if place.thread:
                self.platform.note_thread(place.thread, is_thread=True)
        else:
            place = Place(PLATFORM, str(guild_id) if guild_id else "dm", str(interaction.channel_id))
        incoming = Incoming(
            place=place,
            author=author,
            command=command,
            attachments=tuple(attachment_of(a) for a in attachments),
            event_id=str(interaction.id),
            addressed=True,
        )
        wrapper = InteractionPlatform(
            self.platform,
            interaction,
            ephemeral=ephemeral,
            original_id=str(response.message_id) if response is not None and response.message_id else "",
            attachments={a.url: a for a in attachments},
            clock=self._clock,
            stall_timeout=self.webhook_stall_timeout,
        )
        self._spawn(self._handle_interaction(incoming, wrapper), name=f"discord-command-{interaction.id}")

    async def _handle_interaction(self, incoming: Incoming, wrapper: InteractionPlatform) -> None:
        try:
            await self.engine.handle(incoming, wrapper)
        finally:
            await wrapper.settle()

    # -- messages -------------------------------------------------------------------------------

    async def _on_message(self, message: discord.Message) -> None:
        me = self.client.user
        if me is None or self._stopping:
            return
        incoming = incoming_from_message(message, bot_id=me.id, settings=self.settings)
        if incoming is None:
            return
        author = message.author
        allowed = self.access.allows(
            guild=str(message.guild.id) if message.guild is not None else None,
            channels=channel_ids(message.channel),
            roles=member_roles(author),
            is_admin=incoming.author.is_admin,
            is_operator=self.settings.is_admin(PLATFORM, incoming.author.id),
        )
        if not allowed:
            return
        if incoming.place.thread:
            self.platform.note_thread(incoming.place.thread, is_thread=is_thread(message.channel))
        self._spawn(self._handle_message(incoming, message), name=f"discord-message-{message.id}")

    async def _handle_message(self, incoming: Incoming, message: discord.Message) -> None:
        await self.engine.handle(incoming, MessagePlatform(self.platform, message))
