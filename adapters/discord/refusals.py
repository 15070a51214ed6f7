"""Discord's refusals as PlatformError (status, code and Discord's own text in the message), and
discord.py's rate limits as PlatformRateLimited.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
import discord

from bot.errors import PlatformError, PlatformRateLimited, PlatformUncertain

# Discord's JSON error codes (https://discord.com/developers/docs/topics/opcodes-and-status-codes).
UNKNOWN_WEBHOOK = 10015
INVALID_WEBHOOK_TOKEN = 50027  # the 15-minute interaction token is gone
EXPIRED_TOKEN_CODES = frozenset({INVALID_WEBHOOK_TOKEN, UNKNOWN_WEBHOOK})


def retry_after_of(exc: discord.HTTPException) -> float:
    header = exc.response.headers.get("Retry-After") if exc.response is not None else None
    try:
        return float(header) if header else 5.0
    except ValueError:
        return 5.0


@asynccontextmanager
async def discord_errors(action: str) -> AsyncIterator[None]:
    """Discord's refusals as PlatformError; 429s and discord.py's RateLimited as PlatformRateLimited."""
    try:
        yield
    except discord.RateLimited as exc:
        raise PlatformRateLimited(f"Discord rate limit while {action}", retry_after=exc.retry_after) from exc
    except discord.HTTPException as exc:
        if exc.status == 429:
            raise PlatformRateLimited(
                f"Discord answered 429 while {action}", retry_after=retry_after_of(exc)
            ) from exc
        raise PlatformError(f"Discord refused {action}: {exc.status} (code {exc.code}) {exc.text}") from exc
    except aiohttp.ClientConnectorError as exc:  # never reached Discord
        raise PlatformError(f"Discord unreachable while {action}: {type(exc).__name__}") from exc
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        # Sent, but no answer: Discord may have done it.
        raise PlatformUncertain(f"No answer from Discord while {action}: {type(exc).__name__}") from exc
