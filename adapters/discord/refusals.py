"""Discord's refusals as PlatformError: the message says what happened for the log (status, code,
Discord's own text); `user_text` says what it means for the person who asked, where it means something.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
import discord

from bot.errors import PlatformError, PlatformRateLimited, PlatformUncertain

# Discord's JSON error codes (https://discord.com/developers/docs/topics/opcodes-and-status-codes).
UNKNOWN_WEBHOOK = 10015
UNKNOWN_INTERACTION = 10062  # not acknowledged within 3 s
FILE_TOO_LARGE = 40005
MISSING_ACCESS = 50001  # no View Channel
MISSING_PERMISSIONS = 50013
INVALID_WEBHOOK_TOKEN = 50027  # the 15-minute interaction token is gone
THREAD_ARCHIVED = 50083
EXPIRED_TOKEN_CODES = frozenset({INVALID_WEBHOOK_TOKEN, UNKNOWN_WEBHOOK})

_LET_ME_POST = (
    "A server admin can let me: give me View Channel, Send Messages (Send Messages in Threads, in a "
    "thread), Read Message History and Attach Files here."
)
CANNOT_POST = f"I can't post in this channel. {_LET_ME_POST}"
CANNOT_FINISH = (
    "This answer ran past the 15 minutes Discord gives a command's answer, and I can't post in this "
    f"channel to finish it. {_LET_ME_POST}"
)
CANNOT_READ = (
    "I can't read this channel's messages. A server admin can let me: give me View Channel and "
    "Read Message History here."
)
THREAD_CLOSED = "This thread is archived, so I can't post in it. Ask me again in the channel."
FILE_REFUSED = (
    "Discord would not take the file: it is larger than this server allows (10 MiB without boosts)."
)
COMMAND_EXPIRED = (
    "Discord no longer takes answers to this command: a command's answer has 15 minutes. Please ask again."
)


def retry_after_of(exc: discord.HTTPException) -> float:
    header = exc.response.headers.get("Retry-After") if exc.response is not None else None
    try:
        return float(header) if header else 5.0
    except ValueError:
        return 5.0


def meaning_of(exc: discord.HTTPException, *, forbidden: str) -> str:
    """What Discord's refusal means for the person ("" where it means nothing to them)."""
    if exc.code in (MISSING_ACCESS, MISSING_PERMISSIONS):
        return forbidden
    if exc.code == THREAD_ARCHIVED:
        return THREAD_CLOSED
    if exc.code == FILE_TOO_LARGE or exc.status == 413:
        return FILE_REFUSED
    if exc.code in EXPIRED_TOKEN_CODES or exc.code == UNKNOWN_INTERACTION:
        return COMMAND_EXPIRED
    return ""


@asynccontextmanager
async def discord_errors(action: str, *, forbidden: str = CANNOT_POST) -> AsyncIterator[None]:
    """Discord's refusals as PlatformError; 429s and discord.py's RateLimited as PlatformRateLimited.

    `forbidden` is what a missing permission (50001, 50013) means for the person here."""
    try:
        yield
    except discord.RateLimited as exc:
        raise PlatformRateLimited(f"Discord rate limit while {action}", retry_after=exc.retry_after) from exc
    except discord.HTTPException as exc:
        if exc.status == 429:
            raise PlatformRateLimited(
                f"Discord answered 429 while {action}", retry_after=retry_after_of(exc)
            ) from exc
        raise PlatformError(
            f"Discord refused {action}: {exc.status} (code {exc.code}) {exc.text}",
            user_text=meaning_of(exc, forbidden=forbidden),
        ) from exc
    except aiohttp.ClientConnectorError as exc:  # never reached Discord
        raise PlatformError(f"Discord unreachable while {action}: {type(exc).__name__}") from exc
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        # Sent, but no answer: Discord may have done it.
        raise PlatformUncertain(f"No answer from Discord while {action}: {type(exc).__name__}") from exc
