"""`grokbot check` for Slack: the bot token (auth.test: which workspace, which bot user), the signing
secret in HTTP mode, and in Socket Mode the app-level token (apps.connections.open proves it).
"""

from __future__ import annotations

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.checks import CheckLine
from bot.settings import Settings

__all__ = ["check_slack"]

APPS = "https://api.slack.com/apps → your app"
BOT_TOKEN_FIX = (
    f"Copy the Bot User OAuth Token (xoxb-…) from {APPS} → OAuth & Permissions into SLACK_BOT_TOKEN "
    "(install the app to the workspace first, and reinstall it if the token was revoked)."
)
SECRET_FIX = (
    f"Copy the Signing Secret from {APPS} → Basic Information into SLACK_SIGNING_SECRET, or set "
    "SLACK_APP_TOKEN to use Socket Mode instead."
)
APP_TOKEN_FIX = (
    f"Create an app-level token with the connections:write scope at {APPS} → Basic Information → "
    "App-Level Tokens, set it (xapp-…) as SLACK_APP_TOKEN, and turn Socket Mode on."
)
NETWORK_FIX = "Check SLACK_API_URL (it ends in /api/) and this machine's network (DNS, proxy, firewall)."
TIMEOUT_S = 15
# Transport failures: Slack was not reached (an answer with ok=false is a SlackApiError).
UNREACHED = (aiohttp.ClientError, OSError, TimeoutError)


async def check_slack(settings: Settings) -> list[CheckLine]:
    """Slack's lines for `grokbot check`; a note when Slack is not configured."""
    if settings.slack_bot_token is None:
        return [CheckLine(None, "Slack is not configured (SLACK_BOT_TOKEN is not set)")]
    client = AsyncWebClient(
        token=settings.slack_bot_token.get_secret_value(), base_url=settings.slack_api_url, timeout=TIMEOUT_S
    )
    lines = [await _bot_token(client, settings)]
    if settings.slack_app_token is None:
        lines.append(_signing_secret(settings))
    else:
        lines.append(await _app_token(client, settings))
    return lines


async def _bot_token(client: AsyncWebClient, settings: Settings) -> CheckLine:
    try:
        me = await client.auth_test()
    except SlackApiError as exc:
        return CheckLine(False, f"Slack refused SLACK_BOT_TOKEN ({_error(exc)})", BOT_TOKEN_FIX)
    except UNREACHED as exc:
        return _unreached(settings, exc)
    workspace = f"{me.get('team')} ({me.get('team_id')})"
    return CheckLine(
        True, f"Slack bot token: workspace {workspace}, bot user @{me.get('user')} ({me.get('user_id')})"
    )


def _signing_secret(settings: Settings) -> CheckLine:
    secret = settings.slack_signing_secret
    if secret is None or not secret.get_secret_value():
        return CheckLine(False, "SLACK_SIGNING_SECRET is not set: Slack's HTTP mode needs it", SECRET_FIX)
    return CheckLine(
        True,
        f"Slack HTTP mode: SLACK_SIGNING_SECRET is set (Slack proves it with its first event, sent to "
        f"POST /slack/events on port {settings.port})",
    )


async def _app_token(client: AsyncWebClient, settings: Settings) -> CheckLine:
    assert settings.slack_app_token is not None
    try:
        await client.apps_connections_open(app_token=settings.slack_app_token.get_secret_value())
    except SlackApiError as exc:
        return CheckLine(
            False, f"Slack refused SLACK_APP_TOKEN for Socket Mode ({_error(exc)})", APP_TOKEN_FIX
        )
    except UNREACHED as exc:
        return _unreached(settings, exc)
    return CheckLine(True, "Slack Socket Mode: SLACK_APP_TOKEN opens a connection")


def _error(exc: SlackApiError) -> str:
    """Slack's error code (`invalid_auth`, `not_allowed_token_type`, ...)."""
    return str(exc.response.get("error") or "no error code")


def _unreached(settings: Settings, exc: BaseException) -> CheckLine:
    return CheckLine(
        False, f"Slack unreachable at {settings.slack_api_url} ({type(exc).__name__})", NETWORK_FIX
    )
