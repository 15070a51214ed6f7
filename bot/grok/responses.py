"""The Responses API (`/v1/responses`): interactive answers with server-side tools (web search,
X search, code execution), citations and reasoning summaries, whole or streamed; and whether an
endpoint serves it at all.

Always `store: false`: our database keeps the conversation and resends it each turn, so nothing is
kept at xAI. Never sent (rejected or ignored by xAI, shared/reference/xai-agent-tools.md §1, §7):
`search_parameters`, `tool_choice`, `instructions` with `previous_response_id`, `background`,
`metadata`, `truncation`, penalties, and `reasoning.encrypted_content` in `include`.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncGenerator
from typing import Any

from bot.errors import GrokRejected
from bot.grok.core import OUTPUT_ESTIMATE, ClientCore, StreamCall
from bot.grok.events import ResponseReading
from bot.grok.outputs import parse_response
from bot.grok.pricing import estimate_prompt_tokens
from bot.grok.stream import Gathering
from bot.grok.tools import includes, tools_json
from bot.grok.transport import json_object
from bot.grok.types import ChatMessage, Completion, ImagePart, ResponseRequest, StreamEvent, TextPart

log = logging.getLogger(__name__)


def input_item(message: ChatMessage) -> dict[str, Any]:
    """One conversation turn as a Responses input item; images as `input_image` parts."""
    if isinstance(message.content, str):
        return {"role": message.role, "content": message.content}
    parts: list[dict[str, Any]] = []
    for part in message.content:
        if isinstance(part, TextPart):
            parts.append({"type": "input_text", "text": part.text})
        else:
            image: dict[str, Any] = {"type": "input_image", "image_url": part.url}
            if part.detail is not None:
                image["detail"] = part.detail
            parts.append(image)
    return {"role": message.role, "content": parts}


def has_images(messages: tuple[ChatMessage, ...]) -> bool:
    """The turn (the last user message) has images."""
    last = next((m for m in reversed(messages) if m.role == "user"), None)
    return (
        last is not None
        and not isinstance(last.content, str)
        and any(isinstance(p, ImagePart) for p in last.content)
    )


def responses_body(request: ResponseRequest, *, send_reasoning_effort: bool) -> dict[str, Any]:
    """The JSON body of POST /responses (without `stream`)."""
    body: dict[str, Any] = {
        "model": request.model,
        "input": [input_item(m) for m in request.messages],
        "store": False,
    }
    if request.max_output_tokens is not None:
        body["max_output_tokens"] = request.max_output_tokens
    if request.temperature is not None:
        body["temperature"] = request.temperature
    if request.reasoning_effort is not None and send_reasoning_effort:
        body["reasoning"] = {"effort": request.reasoning_effort}
    if request.tools:
        body["tools"] = tools_json(request.tools, images=has_images(request.messages))
        wanted = includes(request.tools)
        if wanted:
            body["include"] = wanted
        if request.max_turns is not None:
            body["max_turns"] = request.max_turns
    if request.user is not None:
        body["user"] = request.user
    if request.conv_id:
        body["prompt_cache_key"] = request.conv_id
    return body


class ResponseCalls(ClientCore):
    """GrokClient's Responses API calls."""

    def _response(self, request: ResponseRequest) -> tuple[dict[str, Any], int]:
        send_effort = self.takes_reasoning_effort(request.model)
        if request.reasoning_effort is not None and not send_effort:
            log.debug("reasoning effort not sent to %s (not allow-listed)", request.model)
        body = responses_body(request, send_reasoning_effort=send_effort)
        tokens = estimate_prompt_tokens(request.messages) + (request.max_output_tokens or OUTPUT_ESTIMATE)
        return body, tokens

    async def respond(self, request: ResponseRequest) -> Completion:
        """The whole answer at once (tools included: it returns when they and the answer are done)."""
        body, tokens = self._response(request)
        response, permit = await self.transport.call(
            "POST", "/responses", body=body, model=request.model, tokens=tokens
        )
        completion = parse_response(json_object(response))
        self._finished(completion, permit=permit, how="respond")
        return completion

    def stream_response(
        self, request: ResponseRequest, *, gathering: Gathering | None = None
    ) -> AsyncGenerator[StreamEvent, None]:
        """ContentDelta, ReasoningDelta (the summary), ToolCallStarted and ToolCallDone as they
        arrive, then exactly one StreamEnd. Retries only before the stream opened; a break after
        that raises GrokStreamBroken with what had arrived. Close it (`contextlib.aclosing`)
        when stopping early, so its slot is released and the generation stops."""
        return self._stream(functools.partial(self._response_stream, request), ResponseReading, gathering)

    def _response_stream(self, request: ResponseRequest) -> StreamCall:
        body, tokens = self._response(request)
        body["stream"] = True
        return StreamCall(
            "/responses", body, self.transport.headers, request.model, tokens, "stream_response"
        )

    async def serves_responses(self) -> bool:
        """Whether the endpoint serves `/v1/responses` (some xAI-compatible ones serve only Chat
        Completions). Cheap: an empty request, which xAI refuses before any model runs (422),
        while an endpoint without the route answers 404 or 405. Auth and network failures raise."""
        try:
            await self.transport.call("POST", "/responses", body={})
        except GrokRejected as exc:
            serves = exc.status not in (404, 405)
            log.info("grok /v1/responses probe: %s (%s)", "served" if serves else "not served", exc.status)
            return serves
        return True
