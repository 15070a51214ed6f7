"""What grokbot asks of Discord and the discord.py client that asks it: the gateway intents, the
permissions in the invite URL, the command tree, and gateway events passed to the adapter's callbacks.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import discord
from discord import app_commands

log = logging.getLogger(__name__)

MAX_RATELIMIT_TIMEOUT = 30.0  # discord.py's minimum: longer waits raise RateLimited instead of hanging

# What the portal must allow, and the reason for each.
INTENTS = discord.Intents.none()
INTENTS.guilds = True  # channels, threads and roles (allow-lists, Manage Server) arrive with GUILD_CREATE
INTENTS.guild_messages = True  # mentions, replies and thread follow-ups
INTENTS.dm_messages = True  # DMs are conversations
INTENTS.message_content = True  # privileged: replies without a mention, threads and digests need it

# What a server grants when it adds the bot through the invite URL.
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

MESSAGE_CONTENT_HELP = (
    "Discord refused the gateway connection (close code 4014, disallowed intents): grokbot needs the "
    "privileged Message Content intent to read replies, thread messages and channel history for digests. "
    "Enable it at https://discord.com/developers/applications -> your application -> Bot -> Privileged "
    "Gateway Intents -> MESSAGE CONTENT INTENT (Save Changes), then start grokbot again. Apps in 100 or "
    "more servers must also be verified and approved for it."
)
TOKEN_HELP = (
    "Discord rejected DISCORD_TOKEN. Copy the bot token from https://discord.com/developers/applications "
    "-> your application -> Bot -> Reset Token, and set it as DISCORD_TOKEN."
)


def invite_url(client_id: int) -> str:
    """The OAuth2 URL that adds the bot with the permissions its features need."""
    return discord.utils.oauth_url(
        client_id, permissions=INVITE_PERMISSIONS, scopes=("bot", "applications.commands")
    )


class GrokDiscordClient(discord.Client):
    """discord.Client with grokbot's intents and command tree; events go to the adapter's callbacks."""

    def __init__(
        self,
        *,
        on_setup: Callable[[], Awaitable[None]],
        on_message: Callable[[discord.Message], Awaitable[None]],
        guild_ready_timeout: float = 2.0,
    ) -> None:
        super().__init__(
            intents=INTENTS,
            max_ratelimit_timeout=MAX_RATELIMIT_TIMEOUT,
            guild_ready_timeout=guild_ready_timeout,
            chunk_guilds_at_startup=False,
            max_messages=None,  # no message cache: history lives in the database
            allowed_mentions=discord.AllowedMentions(
                everyone=False, users=False, roles=False, replied_user=True
            ),
        )
        self.tree: app_commands.CommandTree[GrokDiscordClient] = app_commands.CommandTree(
            self,
            allowed_contexts=app_commands.AppCommandContext(
                guild=True, dm_channel=True, private_channel=False
            ),
            allowed_installs=app_commands.AppInstallationType(guild=True, user=False),
        )
        self._on_setup = on_setup
        self._on_message = on_message

    async def setup_hook(self) -> None:
        await self._on_setup()

    async def on_message(self, message: discord.Message) -> None:
        await self._on_message(message)

    async def on_ready(self) -> None:
        log.info(
            "Discord gateway ready as %s (%d guilds)", self.user.id if self.user else "?", len(self.guilds)
        )

    async def on_resumed(self) -> None:
        log.info("Discord gateway session resumed")
