"""Where discord.py connects: DISCORD_API_BASE_URL and DISCORD_GATEWAY_URL applied to discord.py, and
without an explicit gateway URL the one Discord names in GET /gateway/bot (the setting's default when
that call fails).
"""

from __future__ import annotations

import logging

import aiohttp
import discord
import yarl

from bot.settings import Settings

log = logging.getLogger(__name__)


def point_discord_py_at(settings: Settings) -> None:
    """DISCORD_API_BASE_URL and DISCORD_GATEWAY_URL (class attributes: they apply to the whole process).
    Without an explicit DISCORD_GATEWAY_URL, `use_bot_gateway` replaces the gateway after login."""
    discord.http.Route.BASE = settings.discord_api_base_url.rstrip("/")
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(settings.discord_gateway_url)


async def use_bot_gateway(client: discord.Client, settings: Settings) -> None:
    """After login: unless DISCORD_GATEWAY_URL was set, connect where GET /gateway/bot says, so
    DISCORD_API_BASE_URL alone decides both."""
    if "discord_gateway_url" in settings.model_fields_set:
        return
    url = await bot_gateway(client, fallback=settings.discord_gateway_url)
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(url)


async def bot_gateway(client: discord.Client, *, fallback: str) -> str:
    """The gateway URL from GET /gateway/bot, as Discord's docs ask (a plain discord.Client never asks);
    `fallback` (the setting's default) when the call fails."""
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
