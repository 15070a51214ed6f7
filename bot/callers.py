"""Who is asking: whose quota a person's request draws on, whether they may run admin commands or
spend without limits, and the key under which one delivery is charged once.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from bot.platform import Incoming
from bot.quotas import Subject
from bot.settings import Settings

__all__ = ["Caller", "charge_key"]


@dataclass(frozen=True)
class Caller:
    """The author of an incoming, as the bot judges them."""

    payer: Subject  # the author, in their workspace
    is_admin: bool  # may run admin commands: GROKBOT_ADMINS, or an admin the platform vouches for
    # Spends without limits: only the operator's GROKBOT_ADMINS. A server's own admins are not
    # exempt, since anyone can make a server and invite the bot to it.
    is_exempt: bool

    @classmethod
    def of(cls, incoming: Incoming, settings: Settings) -> Caller:
        place, author = incoming.place, incoming.author
        operator = settings.is_admin(place.platform, author.id)
        return cls(Subject(place.platform, place.workspace, author.id), author.is_admin or operator, operator)


def charge_key(kind: str, incoming: Incoming) -> str:
    """Unique per platform delivery, so that a redelivered event cannot charge twice."""
    event = incoming.event_id or incoming.message_id or uuid.uuid4().hex
    return f"{kind}:{incoming.place.platform}:{incoming.place.workspace}:{event}"[:160]
