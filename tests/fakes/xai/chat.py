"""The fake's Chat Completions: validation like xAI's, whole, streamed (with faults) and deferred answers."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiohttp import web

from tests.fakes.xai.models import FakeModel, images_in, text_of, tokens
from tests.fakes.xai.scripts import Fault, ScriptedReply

if TYPE_CHECKING:
    from tests.fakes.xai.server import FakeXAI

_compact = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


@dataclass
class Deferred:
    """A deferred request's result, given after `pending` more polls."""

    result: dict[str, Any]
    pending: int
    created: float


class ChatRoutes:
    """The FakeXAI routes of Chat Completions (a mixin: `self` is the FakeXAI)."""

    def _validate_chat(self, body: dict[str, Any]) -> tuple[FakeModel, int] | web.Response:
        messages = body.get("messages")
        if not isinstance(body.get("model"), str) or not isinstance(messages, list):
            return self.error(
                422, "Failed to deserialize the JSON body: missing field `model` or `messages`."
            )
        if not messages:
            return self.error(400, "The messages must not be empty.")
        model = self._models.get(self._resolve(body["model"]))
        if model is None or "search_parameters" in body:
            return self._refused(body, model)
        if model.reasoning:
            for key, name in (("stop", "stop"), ("presence_penalty", "presencePenalty"),
                              ("frequency_penalty", "frequencyPenalty")):  # fmt: skip
                if key in body:
                    return self.error(400, f"Argument not supported on this model: {name}")
        effort = body.get("reasoning_effort")
        if effort is not None:
            if model.efforts is None:
                return self.error(400, "Argument not supported on this model: reasoningEffort")
            if effort not in model.efforts:
                return self.error(
                    400,
                    f"Invalid reasoning effort {effort!r} for model {model.id}; expected one of "
                    f"{', '.join(model.efforts)}.",
                )
        fmt = body.get("response_format")
        if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
            problem = _schema_problem(fmt.get("json_schema", {}).get("schema"))
            if problem:
                return self.error(400, f"Invalid JSON schema for response_format: {problem}")
        prompt = sum(
            tokens(text_of(m.get("content"))) + 3 + 256 * images_in(m.get("content"))
            for m in messages
            if isinstance(m, dict)
        )
        if prompt > model.context:
            return self.error(
                400,
                f"This model's maximum prompt length is {model.context} but the request contains "
                f"{prompt} tokens.",
            )
        return model, prompt

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await self._body(request)
        if isinstance(body, web.Response):
            return body
        checked = self._validate_chat(body)
        if isinstance(checked, web.Response):
            return checked
        model, prompt = checked
        limited = self._rate_limited(model.id, prompt)
        if limited is not None:
            return limited
        reply = self._replies.popleft() if self._replies else self.default_reply or ScriptedReply()
        if reply.status != 200:
            return self._failure_response(reply.status, reply.error_body, reply.retry_after)
        answer = _Answer(self, model, body, reply, prompt)
        if body.get("deferred"):
            rid = str(uuid.uuid4())
            pending = reply.deferred_pending_polls
            self._deferred[rid] = Deferred(answer.completion(), pending, self.now())
            return web.json_response({"request_id": rid})
        if body.get("stream"):
            return await answer.stream(request)
        await self._pause(reply.first_token_delay)
        return web.json_response(answer.completion())

    async def _deferred_get(self, request: web.Request) -> web.StreamResponse:
        rid = request.match_info["rid"]
        job = self._deferred.get(rid)
        if job is not None and self.now() - job.created > self.deferred_ttl:
            del self._deferred[rid]
            job = None
        if job is None:
            return self.error(404, f"No deferred completion found for request id {rid}.")
        if job.pending > 0:
            job.pending -= 1
            return web.Response(status=202)
        del self._deferred[rid]  # collected exactly once
        return web.json_response(job.result)


def _schema_problem(schema: Any) -> str | None:
    """The schema features xAI refuses with a 400 (reference §8), found anywhere in `schema`."""
    if isinstance(schema, list):
        return next((p for p in map(_schema_problem, schema) if p), None)
    if not isinstance(schema, dict):
        return None
    for key in ("enum", "anyOf"):
        if key in schema and schema[key] == []:
            return f"empty {key}"
    if "minContains" in schema or "maxContains" in schema:
        return "minContains/maxContains are not supported"
    if isinstance(schema.get("items"), list):
        return "items must be a schema (use prefixItems for tuples)"
    for name, sub in (schema.get("properties") or {}).items():
        if isinstance(sub, bool):
            return f"property {name} is a boolean schema"
    return next((p for p in map(_schema_problem, schema.values()) if p), None)


def _scripted_text(reply: ScriptedReply, body: dict[str, Any]) -> str:
    if reply.text is not None:
        return reply.text
    users = [m for m in body["messages"] if isinstance(m, dict) and m.get("role") == "user"]
    return "Echo: " + (text_of(users[-1].get("content")) if users else "")


def _reasoning_tokens(reply: ScriptedReply, model: FakeModel, effort: Any) -> int:
    """The reasoning tokens billed: none where `reasoning_effort: none` turned thinking off."""
    if effort == "none":
        return 0
    if reply.reasoning_tokens is not None:
        return reply.reasoning_tokens
    return tokens(reply.reasoning) or (24 if model.reasoning else 0)


class _Answer:
    """One scripted chat answer, rendered as a completion object or as an SSE stream."""

    def __init__(
        self,
        fake: FakeXAI,
        model: FakeModel,
        body: dict[str, Any],
        reply: ScriptedReply,
        prompt: int,
    ) -> None:
        self.fake = fake
        self.reply = reply
        self.body = body
        text = _scripted_text(reply, body)
        self.finish = reply.finish_reason
        limit = body.get("max_completion_tokens", body.get("max_tokens"))
        if isinstance(limit, int) and reply.at_cap:
            text = "word " * (limit + 1)  # more than the cap allows: cut to it below
        if isinstance(limit, int) and tokens(text) > limit:
            text, self.finish = text[: limit * 4], "length"
        self.text = text
        self.reasoning = reply.reasoning
        effort = body.get("reasoning_effort")
        resolved = model.id if effort is None or model.id != "grok-3-mini" else f"{model.id}-{effort}"
        self.model_name = reply.model or resolved
        self.prompt = reply.prompt_tokens if reply.prompt_tokens is not None else prompt
        self.images = sum(images_in(m.get("content")) for m in body["messages"] if isinstance(m, dict))
        self.reasoning_tokens = _reasoning_tokens(reply, model, effort)
        self.prices = model.prices
        self.id = f"{uuid.uuid4()}_us-east-1"
        self.created = int(fake.now())

    def usage(self, completion_tokens: int, reasoning_tokens: int) -> dict[str, Any]:
        cached = min(self.fake.cached_tokens, self.prompt)
        usage: dict[str, Any] = {
            "prompt_tokens": self.prompt,
            "completion_tokens": completion_tokens,
            "total_tokens": self.prompt + completion_tokens + reasoning_tokens,
            "prompt_tokens_details": {
                "text_tokens": self.prompt - 256 * self.images, "audio_tokens": 0,
                "image_tokens": 256 * self.images, "cached_tokens": cached,
            },
            "completion_tokens_details": {
                "reasoning_tokens": reasoning_tokens, "audio_tokens": 0,
                "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0,
            },
            "num_sources_used": 0,
        }  # fmt: skip
        if self.reply.cost_ticks is not None:
            usage["cost_in_usd_ticks"] = self.reply.cost_ticks
        elif self.fake.report_cost:
            prompt, cached_price, completion = self.prices
            usage["cost_in_usd_ticks"] = (
                (self.prompt - cached) * prompt
                + cached * cached_price
                + (completion_tokens + reasoning_tokens) * completion
            )
        return usage

    def completion(self) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": self.text, "refusal": None}
        if self.reasoning:
            message["reasoning_content"] = self.reasoning
        n = self.body.get("n", 1) if isinstance(self.body.get("n"), int) else 1
        choices = [{"index": i, "finish_reason": self.finish, "message": message} for i in range(n)]
        return {
            "id": self.id, "object": "chat.completion", "created": self.created,
            "model": self.model_name, "system_fingerprint": self.fake.fingerprint,
            "choices": choices, "usage": self.usage(tokens(self.text), self.reasoning_tokens),
        }  # fmt: skip

    def _chunk(self, choices: list[dict[str, Any]], usage: dict[str, Any] | None = None) -> bytes:
        chunk: dict[str, Any] = {
            "id": self.id, "object": "chat.completion.chunk", "created": self.created,
            "model": self.model_name, "choices": choices,
        }  # fmt: skip
        if usage is not None:
            chunk["usage"] = usage
        chunk["system_fingerprint"] = self.fake.fingerprint
        return b"data: " + _compact(chunk).encode() + b"\n\n"

    async def stream(self, request: web.Request) -> web.StreamResponse:
        reply = self.reply
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)
        step = max(1, reply.chunk_chars)
        pieces = [
            ("reasoning_content", self.reasoning[i : i + step]) for i in range(0, len(self.reasoning), step)
        ]
        pieces += [("content", self.text[i : i + step]) for i in range(0, len(self.text), step)]
        if not pieces:
            pieces = [("content", "")]
        paced = reply.tokens_per_second is not None or reply.fault is not None
        gap = 1.0 / reply.tokens_per_second if reply.tokens_per_second else 0.0
        running = self.fake.running_usage
        log = self.fake.send_log
        sends = None if log is None else log.setdefault(self.fake.send_log_key(request, self.body), [])
        buffer: list[bytes] = []
        sent_text = sent_reasoning = 0
        try:
            await self.fake._pause(reply.first_token_delay)
            holds = dict(reply.holds)
            for index, (key, piece) in enumerate(pieces):
                if index in holds:
                    if buffer:
                        await response.write(b"".join(buffer))
                        buffer.clear()
                    await self.fake._hold(holds[index])
                fault = reply.fault
                if (
                    fault is not None
                    and fault.after_chunks == index
                    and await self._fault(request, response, fault, buffer)
                ):
                    return response
                delta: dict[str, Any] = {key: piece}
                if index == 0 or running:
                    delta["role"] = "assistant"
                if key == "content":
                    sent_text += len(piece)
                else:
                    sent_reasoning += len(piece)
                usage = (
                    self.usage(tokens(self.text[:sent_text]), tokens(self.reasoning[:sent_reasoning]))
                    if running
                    else None
                )
                buffer.append(self._chunk([{"index": 0, "delta": delta}], usage))
                if index == 0:
                    buffer.extend(self._chunk([{"index": 0, "delta": {}}]) for _ in range(reply.empty_deltas))
                    buffer.extend(b": keep-alive\n\n" for _ in range(reply.comments))
                if paced or len(buffer) >= 64 or index == 0:
                    if sends is not None:  # the time the bytes leave, before the write
                        sends.append((time.perf_counter(), sent_text))
                    await response.write(b"".join(buffer))
                    buffer.clear()
                    if gap:
                        await self.fake._pause(gap)
            fault = reply.fault
            if (
                fault is not None
                and fault.after_chunks >= len(pieces)
                and await self._fault(request, response, fault, buffer)
            ):
                return response
            final = self.usage(tokens(self.text), self.reasoning_tokens)
            finish = {"index": 0, "delta": {}, "finish_reason": self.finish}
            buffer.append(self._chunk([finish], final if running else None))
            options = self.body.get("stream_options")
            if self.fake.include_usage_chunk and isinstance(options, dict) and options.get("include_usage"):
                buffer.append(self._chunk([], final))
            buffer.append(b"data: [DONE]\n\n")
            await response.write(b"".join(buffer))
            await self.fake._pause(reply.end_delay)
            if reply.end_hold is not None:
                await self.fake._hold(reply.end_hold)
            self.fake.stream_ends.append(time.perf_counter())
            await response.write_eof()
        except ConnectionResetError:
            self.fake.streams_cut += 1  # the client went away before the end
            self.fake.stream_cut.set()
        return response

    async def _fault(
        self,
        request: web.Request,
        response: web.StreamResponse,
        fault: Fault,
        buffer: list[bytes],
    ) -> bool:
        """Apply `fault`; True when the connection is gone."""
        if buffer:
            await response.write(b"".join(buffer))
            buffer.clear()
        if fault.kind == "cut":
            await response.write(b'data: {"id":"' + self.id.encode()[:8])
            if request.transport is not None:
                request.transport.close()
            return True
        if fault.kind == "malformed":
            await response.write(b'data: {"id": garbled, "choices": [\n\n')
        else:
            await self.fake._pause(fault.stall_seconds)
        return False
