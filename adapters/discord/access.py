"""Who may use the bot where: GROKBOT_ALLOWED_GUILDS / _CHANNELS / _ROLES with the admins' exemptions,
decided by `Access.allows` on one `Asker` value, built by `asker_of` alike for messages and commands.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import discord

from adapters.discord.places import PLATFORM
from bot.platform import Author
from bot.settings import Settings

REFUSAL = "I'm not enabled here. The bot's operator decides which servers, channels and roles can use me."


@dataclass(frozen=True)
class Asker:
    """Who asks, and where: everything the allow-lists decide on."""

    guild: str | None  # None in a DM
    channels: frozenset[str]  # the channel and, for a thread, its parent (allow-lists name either)
    roles: frozenset[str]
    is_admin: bool  # Manage Server, or GROKBOT_ADMINS: skips the role list
    is_operator: bool  # GROKBOT_ADMINS: may also use the bot in DMs while guilds or roles are restricted


def asker_of(
    user: discord.User | discord.Member,
    author: Author,
    *,
    guild_id: int | None,
    channel: Any,
    settings: Settings,
) -> Asker:
    """The Asker for `user` (as `author`) in `channel`: the same for a message and a slash command."""
    channels = [str(channel.id)]
    parent = getattr(channel, "parent_id", None)
    if parent is not None:
        channels.append(str(parent))
    roles = [str(role.id) for role in user.roles] if isinstance(user, discord.Member) else []
    return Asker(
        guild=str(guild_id) if guild_id else None,
        channels=frozenset(channels),
        roles=frozenset(roles),
        is_admin=author.is_admin,
        is_operator=settings.is_admin(PLATFORM, author.id),
    )


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

    def allows(self, asker: Asker) -> bool:
        if asker.guild is None:
            if asker.is_operator:
                return True
            return not self.guilds and not self.roles and self._channel_allowed(asker)
        if self.guilds and asker.guild not in self.guilds:
            return False
        if not self._channel_allowed(asker):
            return False
        return not self.roles or asker.is_admin or asker.is_operator or bool(self.roles & asker.roles)

    def _channel_allowed(self, asker: Asker) -> bool:
        return not self.channels or bool(self.channels & asker.channels)
