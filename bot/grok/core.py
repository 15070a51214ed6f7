"""What every part of GrokClient shares: the transport, pacing, prices and the reasoning-effort
allow-list, and the one log line of a finished call.
"""

from __future__ import annotations

import asyncio
import fnmatch
import functools
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from bot.grok.pacing import Pacing, Permit, RetryPolicy
from bot.grok.pricing import PriceBook
from bot.grok.stream import READ_GATHER_S, SSE_HEADERS, Gathering, Reading, read_stream
from bot.grok.transport import Attempts, Failure, Observer, Timeouts, Transport
from bot.grok.types import Completion, StreamEvent

log = logging.getLogger(__name__)

# Models that take `reasoning_effort` (reference §2) or `reasoning.effort` on /v1/responses
# (agent tools reference §4: grok-4.7 low/medium/high/xhigh). It changes with every generation.
REASONING_EFFORT_MODELS = ("grok-3-mini*", "grok-4.3*", "grok-4.5*", "grok-4.6*", "grok-4.7*")
OUTPUT_ESTIMATE = 1024  # tokens reserved for a reply whose output limit is not set


@dataclass(frozen=True, slots=True)
class StreamCall:
    """One streamed POST: where, what, and what it costs the pacing budgets."""

    path: str
    body: dict[str, Any]
    headers: dict[str, str]
    model: str
    tokens: int  # estimated, for the tokens-per-minute budget
    how: str  # names the call in the log


class ClientCore:
    """The state GrokClient's calls share. Give it one shared httpx.AsyncClient (closed by its owner)."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        api_key: str,
        base_url: str,
        pacing: Pacing | None = None,
        retry: RetryPolicy | None = None,
        prices: PriceBook | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        timeouts: Timeouts | None = None,
        reasoning_effort_models: Sequence[str] = REASONING_EFFORT_MODELS,
        read_gather_s: float = READ_GATHER_S,
        observer: Observer | None = None,
    ) -> None:
        self.pacing = pacing or Pacing()
        self.read_gather_s = read_gather_s
        self.prices = prices or PriceBook()
        self.reasoning_effort_models = tuple(reasoning_effort_models)
        self.transport = Transport(
            http,
            api_key=api_key,
            base_url=base_url,
            pacing=self.pacing,
            retry=retry or RetryPolicy(),
            sleep=sleep,
            timeouts=timeouts,
            observer=observer,
        )

    def takes_reasoning_effort(self, model: str) -> bool:
        return any(fnmatch.fnmatchcase(model, p) for p in self.reasoning_effort_models)

    def _finished(self, completion: Completion, *, permit: Permit | None, how: str) -> None:
        usage = completion.usage
        if permit is not None and usage is not None:
            permit.settle(usage.total_tokens)
        log.info(
            "grok %s id=%s model=%s finish=%s prompt=%d completion=%d reasoning=%d tools=%d cost=%s fp=%s",
            how,
            completion.id,
            completion.model,
            completion.finish_reason,
            usage.prompt_tokens if usage else -1,
            usage.completion_tokens if usage else -1,
            usage.reasoning_tokens if usage else -1,
            len(completion.tool_calls),
            usage.cost_ticks if usage else None,
            completion.fingerprint,
        )

    async def _stream(
        self,
        prepare: Callable[[], StreamCall],
        reading: Callable[[], Reading],
        gathering: Gathering | None,
    ) -> AsyncGenerator[StreamEvent, None]:
        """The events of one streamed call, then exactly one StreamEnd. Retries happen only
        before the stream opened; any break after that raises GrokStreamBroken with what had
        arrived. Close it (`contextlib.aclosing`) when stopping early, so its slot is released."""
        call = prepare()
        transport = self.transport
        transport.check_open()
        attempts = Attempts(transport, call.body)
        url = transport.base_url + call.path
        headers = {**call.headers, **SSE_HEADERS}
        while True:
            failure: Failure
            async with self.pacing.slot(call.model, tokens=call.tokens) as permit:
                try:
                    async with transport.http.stream(
                        "POST", url, json=attempts.body, headers=headers, timeout=transport.stream_timeout
                    ) as response:
                        if response.status_code == 200:
                            finished = functools.partial(self._finished, permit=permit, how=call.how)
                            reads = gathering or Gathering()
                            events = read_stream(response, reading(), finished, reads, self.read_gather_s)
                            try:
                                async for event in events:
                                    yield event
                            finally:
                                # After StreamEnd: reads the response to its end (see read_stream)
                                await events.aclose()
                            return
                        await response.aread()
                        failure = Failure.of(response)
                except httpx.TransportError as exc:
                    failure = Failure(exc=exc)
            await attempts.recover(failure)  # outside the slot: waiting holds no capacity
