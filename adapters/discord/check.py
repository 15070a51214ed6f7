"""`grokbot check` for Discord: the bot token (GET /users/@me: which bot user) and whether the
application may read message content (GET /applications/@me: its Message Content intent flags),
through discord.py's HTTP client on DISCORD_API_BASE_URL.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import discord
from discord.http import HTTPClient, Route

from adapters.discord.client import invite_url
from adapters.discord.gateway import point_discord_py_at
from bot.checks import CheckLine
from bot.settings import Settings

__all__ = ["check_discord"]

PORTAL = "https://discord.com/developers/applications → your application"
TOKEN_FIX = f"Copy the bot token from {PORTAL} → Bot → Reset Token, and set it as DISCORD_TOKEN."
INTENT_FIX = (
    f"Turn on {PORTAL} → Bot → Privileged Gateway Intents → MESSAGE CONTENT INTENT and Save Changes "
    "(apps in 100 or more servers must also be verified and approved for it)."
)
NETWORK_FIX = "Check DISCORD_API_BASE_URL and this machine's network (DNS, proxy, firewall)."
UNREACHED = (aiohttp.ClientError, OSError, TimeoutError)
TIMEOUT_S = 30.0  # discord.py's requests wait up to aiohttp's five minutes; an operator is waiting
# Application flags (https://discord.com/developers/docs/resources/application#application-object-
# application-flags): the switch is on for a verified app, or for an unverified one (under 100 servers).
MESSAGE_CONTENT = 1 << 18  # GATEWAY_MESSAGE_CONTENT
MESSAGE_CONTENT_LIMITED = 1 << 19  # GATEWAY_MESSAGE_CONTENT_LIMITED


async def check_discord(settings: Settings) -> list[CheckLine]:
    """Discord's lines for `grokbot check`; a note when Discord is not configured."""
    if settings.discord_token is None:
        return [CheckLine(None, "Discord is not configured (DISCORD_TOKEN is not set)")]
    point_discord_py_at(settings)
    http = HTTPClient(asyncio.get_running_loop())
    try:
        return await asyncio.wait_for(_lines(http, settings.discord_token.get_secret_value()), TIMEOUT_S)
    except discord.LoginFailure:
        return [CheckLine(False, "Discord rejected DISCORD_TOKEN (401 Unauthorized)", TOKEN_FIX)]
    except discord.HTTPException as exc:
        return [CheckLine(False, f"Discord refused the check ({exc.status} {exc.text})", NETWORK_FIX)]
    except UNREACHED as exc:
        where = settings.discord_api_base_url
        return [CheckLine(False, f"Discord unreachable at {where} ({type(exc).__name__})", NETWORK_FIX)]
    finally:
        await http.close()


async def _lines(http: HTTPClient, token: str) -> list[CheckLine]:
    me: Any = await http.static_login(token)
    application: Any = await http.request(Route("GET", "/applications/@me"))
    bot = CheckLine(True, f"Discord bot token: bot user {me['username']} ({me['id']})")
    invite = CheckLine(None, f"invite the bot with {invite_url(int(application['id']))}")
    return [bot, _intent_line(application), invite]


def _intent_line(application: Any) -> CheckLine:
    """The portal's Message Content switch, as the application's flags show it."""
    flags = int(application.get("flags") or 0)
    name = application.get("name", "?")
    if flags & MESSAGE_CONTENT:
        return CheckLine(True, f"Discord application {name}: the Message Content intent is on")
    if flags & MESSAGE_CONTENT_LIMITED:
        return CheckLine(
            True, f"Discord application {name}: the Message Content intent is on (unverified app)"
        )
    return CheckLine(
        False,
        f"Discord application {name}: the Message Content intent is off, so replies without a mention, "
        "thread follow-ups and digests cannot be read (the gateway refuses grokbot: 4014)",
        INTENT_FIX,
    )
