"""The discord.py client: intents, the command tree, gateway events, and Discord messages and members
turned into grokbot values (Incoming, Author) under the operator's allow-lists.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import discord
from discord import app_commands

from adapters.discord.platform import MAX_RATELIMIT_TIMEOUT, PLATFORM
from bot.grok import IMAGE_TYPES, MAX_IMAGE_BYTES
from bot.platform import Attachment, Author, Incoming, Place
from bot.settings import Settings

log = logging.getLogger(__name__)

# What the portal must allow, and the reason for each.
INTENTS = discord.Intents.none()
INTENTS.guilds = True  # channels, threads and roles (allow-lists, Manage Server) arrive with GUILD_CREATE
INTENTS.guild_messages = True  # mentions, replies and thread follow-ups
INTENTS.dm_messages = True  # DMs are conversations
INTENTS.message_content = True  # privileged: replies without a mention, threads and digests need it

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

MENTION = re.compile(r"<@!?(\d+)>")
ROLE_MENTION = re.compile(r"<@&(\d+)>")
# A forwarded attachment without a declared type is taken for an image by these names (Grok still
# checks the bytes: bot.grok.image_part).
FORWARDED_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
ANSWERED_TYPES = {discord.MessageType.default, discord.MessageType.reply}
THREAD_TYPES = {
    discord.ChannelType.public_thread,
    discord.ChannelType.private_thread,
    discord.ChannelType.news_thread,
}


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


@dataclass(frozen=True)
class Access:
    """GROKBOT_ALLOWED_GUILDS / _CHANNELS / _ROLES (empty = everything). Admins skip the role list only.

    DMs belong to no guild and carry no roles: with a guild or role list set, only GROKBOT_ADMINS may
    use the bot in DMs (so a cost limit set by server cannot be bypassed in private).
    """

    guilds: frozenset[str]
    channels: frozenset[str]
    roles: frozenset[str]

    @classmethod
    def from_settings(cls, settings: Settings) -> Access:
        return cls(
            frozenset(settings.grokbot_allowed_guilds),
            frozenset(settings.grokbot_allowed_channels),
            frozenset(settings.grokbot_allowed_roles),
        )

    def allows(
        self,
        *,
        guild: str | None,
        channels: Iterable[str],
        roles: Iterable[str],
        is_admin: bool,
        is_operator: bool,
    ) -> bool:
        if guild is None:
            if is_operator:
                return True
            return (
                not self.guilds
                and not self.roles
                and (not self.channels or bool(self.channels & set(channels)))
            )
        if self.guilds and guild not in self.guilds:
            return False
        if self.channels and not self.channels & set(channels):
            return False
        return not self.roles or is_admin or is_operator or bool(self.roles & set(roles))


def author_of(
    user: discord.User | discord.Member, settings: Settings, *, manage_guild: bool = False
) -> Author:
    is_admin = manage_guild or settings.is_admin(PLATFORM, str(user.id))
    return Author(str(user.id), user.display_name, is_admin=is_admin, is_bot=user.bot)


def member_roles(user: discord.User | discord.Member) -> list[str]:
    return [str(role.id) for role in user.roles] if isinstance(user, discord.Member) else []


def channel_ids(channel: Any) -> list[str]:
    """The channel and, for a thread, its parent (allow-lists name either)."""
    ids = [str(channel.id)]
    parent = getattr(channel, "parent_id", None)
    if parent is not None:
        ids.append(str(parent))
    return ids


def is_thread(channel: Any) -> bool:
    return isinstance(channel, discord.Thread) or getattr(channel, "type", None) in THREAD_TYPES


def place_of(channel: Any, guild_id: int | None, *, message_id: str = "") -> Place:
    """See adapters/discord/platform.py for the convention."""
    if guild_id is None:
        return Place(PLATFORM, "dm", str(channel.id))
    if is_thread(channel) and getattr(channel, "parent_id", None) is not None:
        return Place(PLATFORM, str(guild_id), str(channel.parent_id), str(channel.id))
    return Place(PLATFORM, str(guild_id), str(channel.id), message_id)


def attachment_of(attachment: discord.Attachment) -> Attachment:
    return Attachment(attachment.filename, attachment.content_type, attachment.size, url=attachment.url)


def self_role_id(message: discord.Message) -> int | None:
    """The bot's managed role in the message's guild (tags.bot_id is the bot), if any.

    Discord's client often completes "@grokbot" to this role, so `<@&role>` addresses the bot too."""
    role = message.guild.self_role if message.guild is not None else None
    return role.id if role is not None else None


def mentions_bot(message: discord.Message, bot_id: int) -> bool:
    """`<@bot>`, or `<@&the bot's managed role>`."""
    if bot_id in message.raw_mentions:
        return True
    role_id = self_role_id(message)
    return role_id is not None and (
        role_id in message.raw_role_mentions or any(r.id == role_id for r in message.role_mentions)
    )


def clean_text(message: discord.Message, bot_id: int) -> str:
    """The message text without the bot's mention (user or managed role); other user mentions as @name."""
    names = {user.id: user.display_name for user in message.mentions}
    return _cleaned(message.content, names.get, bot_id=bot_id, role_id=self_role_id(message))


def _cleaned(content: str, name_of: Callable[[int], str | None], *, bot_id: int, role_id: int | None) -> str:
    def replace(match: re.Match[str]) -> str:
        user_id = int(match.group(1))
        return "" if user_id == bot_id else f"@{name_of(user_id) or match.group(1)}"

    text = MENTION.sub(replace, content)
    if role_id is not None:
        text = ROLE_MENTION.sub(lambda m: "" if int(m.group(1)) == role_id else m.group(0), text)
    return " ".join(text.split())


def forwarded(message: discord.Message, bot_id: int) -> tuple[str, list[discord.Attachment]]:
    """What a forward quotes: its text (mentions as for typed text; Discord resolves none in a
    snapshot, so names come from the guild's members) and its JPEG and PNG images within the size
    limit. Other files are named in the text: the forward is answered, not refused for them."""
    guild = message.guild

    def name_of(user_id: int) -> str | None:
        member = guild.get_member(user_id) if guild is not None else None
        return member.display_name if member is not None else None

    role_id = self_role_id(message)
    lines: list[str] = []
    images: list[discord.Attachment] = []
    for snapshot in message.message_snapshots:
        quoted = _cleaned(snapshot.content, name_of, bot_id=bot_id, role_id=role_id)
        others = []
        for attachment in snapshot.attachments:
            kind = (attachment.content_type or "").split(";")[0].strip().lower()
            is_image = kind in IMAGE_TYPES or (
                not kind and attachment.filename.lower().endswith(FORWARDED_IMAGE_SUFFIXES)
            )
            if is_image and attachment.size <= MAX_IMAGE_BYTES:
                images.append(attachment)
            else:
                others.append(attachment.filename)
        files = f" [with files: {', '.join(others)}]" if others else ""
        if quoted or files:
            lines.append(f"[forwarded message] {quoted}{files}".rstrip())
    return "\n".join(lines), images


def incoming_from_message(message: discord.Message, *, bot_id: int, settings: Settings) -> Incoming | None:
    """The Incoming for a message meant for the bot, or None when it is not the bot's business.

    Passed on: mentions (of the bot or of its managed role), replies (the engine continues a
    conversation when the replied-to message is the bot's; a forward is not a reply), every message in
    a thread (answered when the thread, or the message it was started from, belongs to a conversation)
    and DMs. A forward's quoted message (its text and attachments) is what the forward says.
    """
    if message.author.bot or message.webhook_id is not None or message.type not in ANSWERED_TYPES:
        return None
    guild_id = message.guild.id if message.guild is not None else None
    mentioned = mentions_bot(message, bot_id)
    reference = message.reference
    if reference is not None and reference.type is discord.MessageReferenceType.forward:
        reference = None  # a forward quotes a message (in message_snapshots); it is not a reply to it
    reply_to = str(reference.message_id) if reference is not None and reference.message_id else ""
    if not reply_to and is_thread(message.channel):
        # A thread made from a message has that message's id: started from one of the bot's answers,
        # it continues that answer's conversation.
        reply_to = str(message.channel.id)
    if guild_id is not None and not mentioned and not is_thread(message.channel):
        resolved = reference.resolved if reference is not None else None
        if not reply_to or (isinstance(resolved, discord.Message) and resolved.author.id != bot_id):
            return None  # plain channel chatter, or a reply to someone else
    manage_guild = (
        isinstance(message.author, discord.Member) and message.author.guild_permissions.manage_guild
    )
    text, attachments = clean_text(message, bot_id), list(message.attachments)
    if message.message_snapshots:  # a forward: what it quotes is what was said
        quoted, images = forwarded(message, bot_id)
        text = f"{text}\n{quoted}".strip()
        attachments.extend(images)
    return Incoming(
        place=place_of(message.channel, guild_id, message_id=str(message.id)),
        author=author_of(message.author, settings, manage_guild=manage_guild),
        text=text,
        attachments=tuple(attachment_of(a) for a in attachments),
        message_id=str(message.id),
        reply_to=reply_to,
        event_id=str(message.id),
        # The same token on two processes delivers every event twice: the database picks one.
        deduplicate=True,
        addressed=mentioned or guild_id is None,
    )
