"""Which xAI API answers a question, and its stream of events: the Responses API with the turn's
tools (the default), or Chat Completions (GROKBOT_XAI_API=chat, deferred answers, and every answer
once the endpoint turned out not to serve /v1/responses).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncGenerator

from bot.errors import GrokRejected
from bot.grok import ChatRequest, Gathering, GrokClient, ResponseRequest, StreamEvent

__all__ = ["NOT_SERVED", "Upstream"]

log = logging.getLogger(__name__)

NOT_SERVED = (404, 405)  # what an endpoint without the /v1/responses route answers


class Upstream:
    """The API interactive answers go to. `responses` turns False for the rest of the process
    when the endpoint turns out not to serve /v1/responses (a 404 or 405 that the client's probe
    confirms: xAI also answers 404 for an unknown model): that answer and every later one go to
    Chat Completions instead of failing."""

    def __init__(self, grok: GrokClient, *, api: str) -> None:
        self._grok = grok
        self.responses = api == "responses"

    def stream(
        self, chat: ChatRequest, response: ResponseRequest | None, *, gathering: Gathering
    ) -> AsyncGenerator[StreamEvent, None]:
        """The answer's events: of `response` on the Responses API where it is given and served,
        else of `chat` on Chat Completions. Close it (`contextlib.aclosing`) when stopping early."""
        if response is None or not self.responses:
            return self._grok.stream(chat, gathering=gathering)
        return self._responses(chat, response, gathering)

    async def _responses(
        self, chat: ChatRequest, response: ResponseRequest, gathering: Gathering
    ) -> AsyncGenerator[StreamEvent, None]:
        async with contextlib.aclosing(self._grok.stream_response(response, gathering=gathering)) as events:
            try:
                first = await anext(events)
            except GrokRejected as exc:
                if exc.status not in NOT_SERVED or await self._grok.serves_responses():
                    raise
                self._not_served(exc)
            else:
                yield first
                async for event in events:
                    yield event
                return
        async with contextlib.aclosing(self._grok.stream(chat, gathering=gathering)) as fallback:
            async for event in fallback:
                yield event

    def _not_served(self, exc: GrokRejected) -> None:
        if self.responses:
            log.warning(
                "the xAI endpoint does not serve /v1/responses (%s): answering on Chat Completions, "
                "without web and X search, until restarted; set GROKBOT_XAI_API=chat to say so",
                exc.status,
            )
        self.responses = False
