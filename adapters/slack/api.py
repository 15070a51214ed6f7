"""One gate for every Web API call the adapter makes: paced by `Pacer`, counted, and with Slack's
failures mapped to the seam's errors (PlatformRateLimited for 429, SlackRefused for `ok: false`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from prometheus_client import CollectorRegistry, Counter
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from adapters.slack.pacing import Pacer
from bot.errors import PlatformError, PlatformRateLimited, PlatformUncertain

log = logging.getLogger(__name__)

AUX_RETRIES = 3  # 429s absorbed for calls that are not edits (the engine paces edits itself)
RATE_LIMITED = frozenset({"ratelimited", "rate_limited"})


# What a refusal means for the person who asked (the engine shows "That did not work: ...").
HINTS = {
    "not_in_channel": "I am not in this channel; invite me with `/invite @Grok`.",
    "channel_not_found": "I cannot see this channel; invite me with `/invite @Grok`.",
    "is_archived": "this channel is archived.",
    "restricted_action": "a workspace setting keeps me from posting here.",
    "missing_scope": "the Slack app lacks a permission; an admin should reinstall it from the manifest.",
    "invalid_auth": "my Slack token is not valid; an admin should check SLACK_BOT_TOKEN.",
    "token_revoked": "my Slack token was revoked; an admin should reinstall the app.",
    "account_inactive": "my Slack token belongs to a deactivated app or workspace.",
    "message_limit_exceeded": "this workspace has reached its plan's message limit.",
}


class SlackRefused(PlatformError):
    """Slack answered `{"ok": false, "error": ...}`; `error` is Slack's code (e.g. msg_too_long)."""

    def __init__(self, method: str, error: str) -> None:
        self.method = method
        self.error = error
        hint = HINTS.get(error)
        super().__init__(
            f"Slack refused {method} ({error}): {hint}" if hint else f"Slack refused {method}: {error}"
        )


class SlackApi:
    def __init__(self, *, pacer: Pacer, registry: CollectorRegistry | None = None) -> None:
        self.pacer = pacer
        self.rate_limited = 0
        self._calls = Counter(
            "grokbot_slack_api_calls",
            "Slack Web API calls, by method and outcome (ok, a Slack error code, ratelimited, network).",
            ["method", "outcome"],
            registry=registry if registry is not None else CollectorRegistry(),
        )

    async def call(
        self,
        method: str,
        request: Callable[[], Awaitable[AsyncSlackResponse]],
        *,
        team: str,
        channel: str = "",
        edit: bool = False,
        paced: bool = True,
    ) -> AsyncSlackResponse:
        """Run `request` (one SDK call of `method`) within Slack's limits.

        `edit`: a 429 is raised as PlatformRateLimited so the engine slows the scope; otherwise it is
        waited out and retried here, a few times. `paced=False`: the caller already took the slot.
        """
        for attempt in range(AUX_RETRIES + 1):
            if paced or attempt:
                await self.pacer.acquire(method, team, channel)
            try:
                response = await request()
            except SlackApiError as exc:
                code = exc.response.get("error")
                # HTTP 429 with Retry-After; the posting methods also document `rate_limited`
                # ("posted too many messages") as an ok:false answer, with or without the header.
                if exc.response.status_code == 429 or code in RATE_LIMITED:
                    retry_after = _retry_after(exc.response.headers)
                    self.rate_limited += 1
                    self._calls.labels(method, "ratelimited").inc()
                    self.pacer.penalize(method, team, channel, retry_after)
                    log.warning("Slack rate-limited %s for %.1f s", method, retry_after)
                    if edit or attempt == AUX_RETRIES:
                        raise PlatformRateLimited(
                            f"Slack rate-limited {method}", retry_after=retry_after
                        ) from None
                    await asyncio.sleep(retry_after)
                    continue
                error = str(code or f"http_{exc.response.status_code}")
                self._calls.labels(method, error).inc()
                raise SlackRefused(method, error) from None
            except aiohttp.ClientConnectorError as exc:  # never reached Slack
                self._calls.labels(method, "network").inc()
                raise PlatformError(f"Slack {method} failed: {type(exc).__name__}") from None
            except (SlackClientError, aiohttp.ClientError, TimeoutError) as exc:
                # Sent, but no answer: Slack may have done it.
                self._calls.labels(method, "network").inc()
                raise PlatformUncertain(f"Slack {method} failed: {type(exc).__name__}") from None
            self._calls.labels(method, "ok").inc()
            return response
        raise AssertionError("unreachable")  # pragma: no cover


def _retry_after(headers: Any) -> float:
    try:
        value = headers.get("Retry-After") or headers.get("retry-after")
        return max(0.0, float(value)) if value is not None else 1.0
    except (TypeError, ValueError):
        return 1.0
