"""One gate for every Web API call the adapter makes: paced by `Pacer`, counted, and with Slack's
failures mapped to the seam's errors (PlatformRateLimited for 429, a `SlackRefused` type per kind of
`ok: false` answer, chosen by `refusals.refusal`).
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
from adapters.slack.refusals import RATE_LIMITED, refusal
from bot.errors import PlatformError, PlatformRateLimited, PlatformUncertain

log = logging.getLogger(__name__)

AUX_RETRIES = 3  # 429s absorbed for calls that are not edits (the engine paces edits itself)
UNREACHABLE = "I could not reach Slack just now; please try again in a moment."


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
                return await self._send(method, request)
            except PlatformRateLimited as exc:
                self.pacer.penalize(method, team, channel, exc.retry_after)
                if edit or attempt == AUX_RETRIES:
                    raise
                await asyncio.sleep(exc.retry_after)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _send(
        self, method: str, request: Callable[[], Awaitable[AsyncSlackResponse]]
    ) -> AsyncSlackResponse:
        """One request, its outcome counted; Slack's failures raised as the seam's errors."""
        try:
            response = await request()
        except SlackApiError as exc:
            raise self._refused(method, exc.response) from None
        except aiohttp.ClientConnectorError as exc:  # never reached Slack
            self._calls.labels(method, "network").inc()
            raise PlatformError(
                f"Slack {method} failed: {type(exc).__name__}", user_text=UNREACHABLE
            ) from None
        except (SlackClientError, aiohttp.ClientError, TimeoutError) as exc:
            # Sent, but no answer: Slack may have done it.
            self._calls.labels(method, "network").inc()
            raise PlatformUncertain(
                f"Slack {method} failed: {type(exc).__name__}", user_text=UNREACHABLE
            ) from None
        self._calls.labels(method, "ok").inc()
        return response

    def _refused(self, method: str, response: AsyncSlackResponse) -> PlatformError:
        """What Slack's answer means: rate limited (HTTP 429 with Retry-After; the posting methods
        also answer `rate_limited` as ok:false, with or without the header) or a kind of refusal."""
        code = response.get("error")
        if response.status_code == 429 or code in RATE_LIMITED:
            retry_after = _retry_after(response.headers)
            self.rate_limited += 1
            self._calls.labels(method, "ratelimited").inc()
            log.warning("Slack rate-limited %s for %.1f s", method, retry_after)
            return PlatformRateLimited(f"Slack rate-limited {method}", retry_after=retry_after)
        error = str(code or f"http_{response.status_code}")
        self._calls.labels(method, error).inc()
        return refusal(method, error)


def _retry_after(headers: Any) -> float:
    try:
        value = headers.get("Retry-After") or headers.get("retry-after")
        return max(0.0, float(value)) if value is not None else 1.0
    except (TypeError, ValueError):
        return 1.0
