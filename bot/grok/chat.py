"""Chat Completions (`/v1/chat/completions`): whole, streamed, structured and deferred answers.
Deferred answers and endpoints without `/v1/responses` use this API.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
from collections.abc import AsyncGenerator, Mapping
from typing import Any
from urllib.parse import quote

import jsonschema

from bot.errors import DeferredGone, GrokInvalidOutput, GrokRejected, GrokUnavailable
from bot.grok.core import OUTPUT_ESTIMATE, ClientCore, StreamCall
from bot.grok.pricing import estimate_prompt_tokens
from bot.grok.stream import Gathering, broken
from bot.grok.transport import json_object
from bot.grok.types import ChatRequest, Completion, ContentDelta, ReasoningDelta, StreamEvent
from bot.grok.wire import chat_body, parse_completion, parse_usage

log = logging.getLogger(__name__)


class ChatCalls(ClientCore):
    """GrokClient's Chat Completions calls."""

    def _chat(self, request: ChatRequest) -> tuple[dict[str, Any], dict[str, str], int]:
        send_effort = self.takes_reasoning_effort(request.model)
        if request.reasoning_effort is not None and not send_effort:
            log.debug("reasoning_effort not sent to %s (not allow-listed)", request.model)
        body = chat_body(request, send_reasoning_effort=send_effort)
        headers = self.transport.headers
        if request.conv_id:
            headers = {**headers, "x-grok-conv-id": request.conv_id}
        tokens = estimate_prompt_tokens(request.messages) + (request.max_tokens or OUTPUT_ESTIMATE)
        return body, headers, tokens

    async def complete(self, request: ChatRequest) -> Completion:
        body, headers, tokens = self._chat(request)
        response, permit = await self.transport.call(
            "POST", "/chat/completions", body=body, headers=headers, model=request.model, tokens=tokens
        )
        completion = parse_completion(json_object(response))
        self._finished(completion, permit=permit, how="complete")
        return completion

    def stream(
        self, request: ChatRequest, *, gathering: Gathering | None = None
    ) -> AsyncGenerator[StreamEvent, None]:
        """Deltas as they arrive, then exactly one StreamEnd. Retries happen only before the
        stream opened; any break after that raises GrokStreamBroken with what had arrived.
        Close it (`contextlib.aclosing`) when stopping early, so its slot is released."""
        return self._stream(functools.partial(self._chat_stream, request), ChatReading, gathering)

    def _chat_stream(self, request: ChatRequest) -> StreamCall:
        body, headers, tokens = self._chat(request)
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
        return StreamCall("/chat/completions", body, headers, request.model, tokens, "stream")

    async def structured(
        self, request: ChatRequest, *, schema: Mapping[str, Any], name: str
    ) -> tuple[Any, Completion]:
        """The reply as JSON validated against `schema` (strict json_schema response format);
        GrokInvalidOutput when it is not JSON or does not match. An invalid `schema` itself is a
        programming error: jsonschema's SchemaError, raised before anything is sent."""
        schema = dict(schema)
        validator_class = jsonschema.validators.validator_for(schema)
        validator_class.check_schema(schema)
        response_format = {
            "type": "json_schema",
            "json_schema": {"name": name, "strict": True, "schema": schema},
        }
        completion = await self.complete(dataclasses.replace(request, response_format=response_format))
        raw = completion.text
        try:
            value = json.loads(raw)
        except ValueError:
            raise GrokInvalidOutput(
                f"the structured reply for {name} is not JSON (finish={completion.finish_reason})",
                raw=raw,
            ) from None
        validator = validator_class(schema, format_checker=validator_class.FORMAT_CHECKER)
        error = jsonschema.exceptions.best_match(validator.iter_errors(value))
        if error is not None:
            where = "/".join(str(p) for p in error.absolute_path) or "(root)"
            raise GrokInvalidOutput(
                f"the structured reply for {name} does not match its schema at {where}: "
                f"{error.message[:200]}",
                raw=raw,
            )
        return value, completion

    # -- deferred ---------------------------------------------------------------------------

    async def start_deferred(self, request: ChatRequest) -> str:
        body, headers, tokens = self._chat(request)
        body["deferred"] = True
        response, _ = await self.transport.call(
            "POST", "/chat/completions", body=body, headers=headers, model=request.model, tokens=tokens
        )
        request_id = json_object(response).get("request_id")
        if not isinstance(request_id, str) or not request_id:
            raise GrokUnavailable("xAI accepted the deferred request but gave no request_id")
        log.info("grok deferred started request_id=%s model=%s", request_id, request.model)
        return request_id

    async def fetch_deferred(self, request_id: str) -> Completion | None:
        """None while the result is not ready (202); the Completion once (200); DeferredGone when
        it does not exist, was already collected or expired (404)."""
        try:
            response, _ = await self.transport.call(
                "GET", f"/chat/deferred-completion/{quote(request_id, safe='')}", ok=(200, 202)
            )
        except GrokRejected as exc:
            if exc.status == 404:
                raise DeferredGone(
                    f"the deferred result {request_id} is gone (expired or already collected)",
                    status=404,
                ) from exc
            raise
        if response.status_code == 202:
            return None
        completion = parse_completion(json_object(response))
        self._finished(completion, permit=None, how="deferred")
        return completion


class ChatReading:
    """What a chat stream has said so far; `take` reads one chunk's data."""

    urgent: tuple[bytes, ...] = (b"[DONE]",)

    def __init__(self) -> None:
        self.text: list[str] = []
        self.reasoning: list[str] = []
        self.cid = self.model = self.fingerprint = self.finish = ""
        self.usage: Any = None
        self.done = False  # [DONE] arrived

    @property
    def gather(self) -> bool:
        return bool(self.text or self.reasoning)  # from the first delta on

    def take(self, data: bytes) -> tuple[StreamEvent, ...]:
        """The deltas in one chunk's data (usually one; none for usage, finish or [DONE])."""
        if not data:
            return ()
        if data == b"[DONE]":
            self.done = True
            return ()
        chunk = json.loads(data)
        if not self.cid:
            self.cid = chunk.get("id") or ""
            self.model = chunk.get("model") or ""
        self.fingerprint = chunk.get("system_fingerprint") or self.fingerprint
        usage = chunk.get("usage")
        if usage:  # on whichever chunk carries it; the last one wins
            self.usage = usage
        choices = chunk.get("choices")
        if not choices:
            if choices is None and "error" in chunk:
                raise broken("an error event", self)
            return ()
        choice = choices[0]
        reason = choice.get("finish_reason")
        if reason:
            self.finish = reason
        delta = choice.get("delta")
        if not delta:
            return ()
        content = delta.get("content")
        thought = delta.get("reasoning_content")
        if thought:
            self.reasoning.append(thought)
            if content:
                self.text.append(content)
                return (ReasoningDelta(thought), ContentDelta(content))
            return (ReasoningDelta(thought),)
        if content:
            self.text.append(content)
            return (ContentDelta(content),)
        return ()

    def missing(self) -> str | None:
        return None if self.done or self.finish else "an end without [DONE]"

    def completion(self) -> Completion:
        return Completion(
            id=self.cid,
            model=self.model,
            text="".join(self.text),
            reasoning="".join(self.reasoning),
            finish_reason=self.finish,
            usage=parse_usage(self.usage),
            fingerprint=self.fingerprint,
        )
