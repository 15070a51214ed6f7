"""Discord messages and slash commands turned into grokbot values: `Incoming` (what was said, by whom,
where) and `Author`; which messages are the bot's business, mentions, replies and forwards.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

import discord

from adapters.discord.places import PLATFORM, is_thread, place_of
from bot.grok import IMAGE_TYPES, MAX_IMAGE_BYTES
from bot.platform import Attachment, Author, Command, Incoming
from bot.settings import Settings

MENTION = re.compile(r"<@!?(\d+)>")
ROLE_MENTION = re.compile(r"<@&(\d+)>")
# A forwarded attachment without a declared type is taken for an image by these names (Grok still
# checks the bytes: bot.grok.image_part).
FORWARDED_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
ANSWERED_TYPES = {discord.MessageType.default, discord.MessageType.reply}


def author_of(
    user: discord.User | discord.Member, settings: Settings, *, manage_guild: bool = False
) -> Author:
    is_admin = manage_guild or settings.is_admin(PLATFORM, str(user.id))
    return Author(str(user.id), user.display_name, is_admin=is_admin, is_bot=user.bot)


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
        kept, others = _images_and_others(snapshot.attachments)
        images.extend(kept)
        files = f" [with files: {', '.join(others)}]" if others else ""
        if quoted or files:
            lines.append(f"[forwarded message] {quoted}{files}".rstrip())
    return "\n".join(lines), images


def _images_and_others(
    attachments: Sequence[discord.Attachment],
) -> tuple[list[discord.Attachment], list[str]]:
    """The images Grok can read (by type, or by name when untyped) within the size limit, and the
    names of the other files."""
    images, others = [], []
    for attachment in attachments:
        kind = (attachment.content_type or "").split(";")[0].strip().lower()
        is_image = kind in IMAGE_TYPES or (
            not kind and attachment.filename.lower().endswith(FORWARDED_IMAGE_SUFFIXES)
        )
        if is_image and attachment.size <= MAX_IMAGE_BYTES:
            images.append(attachment)
        else:
            others.append(attachment.filename)
    return images, others


def _reference(message: discord.Message) -> discord.MessageReference | None:
    """The message replied to: a forward quotes a message (in message_snapshots), it does not reply."""
    reference = message.reference
    if reference is not None and reference.type is discord.MessageReferenceType.forward:
        return None
    return reference


def _reply_to(message: discord.Message, reference: discord.MessageReference | None) -> str:
    if reference is not None and reference.message_id:
        return str(reference.message_id)
    if is_thread(message.channel):
        # A thread made from a message has that message's id: started from one of the bot's answers,
        # it continues that answer's conversation.
        return str(message.channel.id)
    return ""


def _may_reply_to_bot(reference: discord.MessageReference | None, reply_to: str, bot_id: int) -> bool:
    """A reply that may continue one of the bot's conversations: not plain chatter, and not a reply
    to someone else's message (the engine decides by the replied-to message where it is unresolved)."""
    resolved = reference.resolved if reference is not None else None
    return bool(reply_to) and not (isinstance(resolved, discord.Message) and resolved.author.id != bot_id)


def _said(message: discord.Message, bot_id: int) -> tuple[str, list[discord.Attachment]]:
    """The text and attachments; a forward's quoted message is what the forward says."""
    text, attachments = clean_text(message, bot_id), list(message.attachments)
    if message.message_snapshots:
        quoted, images = forwarded(message, bot_id)
        text = f"{text}\n{quoted}".strip()
        attachments.extend(images)
    return text, attachments


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
    reference = _reference(message)
    reply_to = _reply_to(message, reference)
    in_channel = guild_id is not None and not is_thread(message.channel)
    if in_channel and not mentioned and not _may_reply_to_bot(reference, reply_to, bot_id):
        return None
    author = message.author
    manage_guild = isinstance(author, discord.Member) and author.guild_permissions.manage_guild
    text, attachments = _said(message, bot_id)
    return Incoming(
        place=place_of(message.channel, guild_id, message_id=str(message.id)),
        author=author_of(author, settings, manage_guild=manage_guild),
        text=text,
        attachments=tuple(attachment_of(a) for a in attachments),
        message_id=str(message.id),
        reply_to=reply_to,
        event_id=str(message.id),
        # The same token on two processes delivers every event twice: the database picks one.
        deduplicate=True,
        addressed=mentioned or guild_id is None,
    )


def command_author(interaction: discord.Interaction[Any], settings: Settings) -> Author:
    """Who ran a slash command; Manage Server in the command's channel makes an admin."""
    manage_guild = bool(interaction.guild_id) and interaction.permissions.manage_guild
    return author_of(interaction.user, settings, manage_guild=manage_guild)


def incoming_from_command(
    interaction: discord.Interaction[Any],
    command: Command,
    *,
    author: Author,
    channel: Any,
    attachments: Sequence[discord.Attachment] = (),
) -> Incoming:
    """The Incoming for a slash command run by `author` in `channel`."""
    return Incoming(
        place=place_of(channel, interaction.guild_id),
        author=author,
        command=command,
        attachments=tuple(attachment_of(a) for a in attachments),
        event_id=str(interaction.id),
        addressed=True,
    )
