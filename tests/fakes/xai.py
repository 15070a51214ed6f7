"""A fake xAI REST API: a real aiohttp server on 127.0.0.1 with the reference's framing, bodies and
status codes (docs: /work/shared/reference/xai-api.md §14), plus the pytest fixtures `fake_xai` and `grok`.

Scripting (every switch is a plain attribute; set it any time):

    async with FakeXAI() as fake:              # or: fake = FakeXAI(); await fake.start() ... stop()
        fake.base_url                          # "http://127.0.0.1:<port>/v1"; fake.api_key "xai-test-key"
        fake.queue_reply(ScriptedReply(text="Hi", reasoning="hmm", fault=Fault("cut", after_chunks=2)))
            # FIFO, used by the next chat completion (streamed, whole or deferred) that passes
            # validation; nothing queued -> `fake.default_reply`, or "Echo: <last user text>".
        fake.fail_next(503, times=2, retry_after=1.0)   # the next /v1 requests (or those under path=)
        fake.requests                          # [RecordedRequest(method, path, headers, json)]
        fake.max_in_flight                     # most /v1 requests ever handled at once
        fake.now = lambda: t                   # clock for deferred 24 h expiry, RPM/TPM windows, image URLs

    Switches: moderate_images, image_data_prefix (b64 with "data:image/png;base64,"), image_mime_type,
    force_image_urls (answer with `url` whatever was asked), running_usage (legacy: a running `usage`
    on every chunk), include_usage_chunk (False: ignore stream_options), report_cost (cost_in_usd_ticks),
    cached_tokens, fingerprint, credits_exhausted (None | 403 | 429), code_style ("grpc" | "kebab" |
    "status"), rpm_limit / tpm_limit (per model, 60 s window) with rate_limit_retry_after,
    api_key_blocked / team_blocked / api_key_disabled, image_url_ttl, deferred_ttl.

A stream chunk counts as one token for `tokens_per_second`; `Fault.after_chunks` counts text chunks.
Run standalone: `python -m tests.fakes.xai [--port N]`.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import math
import re
import struct
import time
import uuid
import zlib
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx
import pytest_asyncio
from aiohttp import web
from multidict import CIMultiDict

from bot.grok import GrokClient, RetryPolicy
from bot.grok.net import AsyncioTransport

API_KEY = "xai-test-key"
TEAM_ID = "5ea6f6bd-0000-4000-8000-fa4e7eam0001"
DAY = 24 * 3600.0
_compact = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


@dataclass(frozen=True)
class FakeModel:
    id: str
    aliases: tuple[str, ...] = ()
    context: int = 131_072
    prices: tuple[int, int, int] = (0, 0, 0)  # ticks per token: prompt, cached, completion
    efforts: tuple[str, ...] | None = None  # accepted reasoning_effort values; None: 400 if sent
    reasoning: bool = False  # a reasoning model: rejects stop and penalties
    exposes_reasoning: bool = False


LANGUAGE_MODELS = (
    FakeModel("grok-4.3", (), 1_000_000, (12_500, 2_000, 25_000), ("none", "low", "medium", "high"), True),
    FakeModel("grok-4-1-fast-reasoning", ("grok-4-1-fast",), 2_000_000, (2_000, 500, 5_000), None, True),
    FakeModel("grok-4-1-fast-non-reasoning", (), 2_000_000, (2_000, 500, 5_000)),
    FakeModel("grok-4-fast-reasoning", ("grok-4-fast",), 2_000_000, (2_000, 500, 5_000), None, True),
    FakeModel("grok-4-0709", ("grok-4", "grok-4-latest"), 256_000, (30_000, 7_500, 150_000), None, True),
    FakeModel("grok-3", ("grok-3-latest", "grok-3-beta"), 131_072, (30_000, 7_500, 150_000)),
    FakeModel("grok-3-mini", (), 131_072, (3_000, 750, 5_000), ("low", "high"), True, True),
    FakeModel("grok-code-fast-1", (), 256_000, (2_000, 200, 15_000), None, True, True),
)  # fmt: skip
IMAGE_MODELS: dict[str, tuple[tuple[str, ...], int]] = {  # id: (aliases, USD cents per image)
    "grok-imagine-image": ((), 2),
    "grok-2-image-1212": (("grok-2-image", "grok-2-image-latest"), 7),
}
CODES: dict[int, tuple[str, str]] = {
    400: ("Client specified an invalid argument", "invalid-argument"),
    401: ("The request does not have valid authentication credentials", "unauthenticated"),
    403: ("The caller does not have permission to execute the specified operation", "permission-denied"),
    404: ("Some requested entity was not found", "not-found"),
    410: ("The requested entity is gone", "gone"),
    415: ("Unsupported media type", "invalid-argument"),
    422: ("Client specified an invalid argument", "invalid-argument"),
    429: ("Some resource has been exhausted", "resource-exhausted"),
    500: ("Internal error", "internal"),
    503: ("The service is currently unavailable", "unavailable"),
}  # fmt: skip
CREDITS_TEXT = (
    "Your team {team} has either used all available credits or reached its monthly spending limit. "
    "To continue making API requests, please purchase more credits or raise your spending limit."
)


@dataclass(frozen=True)
class Fault:
    """`cut`: half a line, then the connection drops; `malformed`: a garbled data line, then the
    stream goes on; `stall`: silence for `stall_seconds`, then it goes on. Before text chunk
    number `after_chunks` (0 = before the first)."""

    kind: Literal["cut", "malformed", "stall"]
    after_chunks: int
    stall_seconds: float = 30.0


@dataclass(frozen=True)
class ScriptedReply:
    text: str | None = None  # None: "Echo: <last user text>"
    reasoning: str = ""
    finish_reason: str = "stop"
    chunk_chars: int = 4
    first_token_delay: float = 0.0  # also delays a non-streamed answer
    tokens_per_second: float | None = None
    prompt_tokens: int | None = None
    cost_ticks: int | None = None  # else computed from the model's prices (when report_cost)
    model: str | None = None  # the resolved name to answer with
    empty_deltas: int = 0  # `"delta":{}` chunks after the first text chunk
    comments: int = 0  # ": keep-alive" lines after the first text chunk
    fault: Fault | None = None
    status: int = 200  # non-200: answer with this error instead
    error_body: dict[str, Any] | None = None
    retry_after: float | None = None
    deferred_pending_polls: int = 2
    end_delay: float = 0.0  # seconds between [DONE] and the end of the response (a lagging server)


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: CIMultiDict[str]  # case-insensitive
    json: Any  # None when the body is empty or not JSON


@dataclass
class _Failure:
    status: int
    times: int
    body: dict[str, Any] | str | None
    retry_after: float | None
    path: str | None


@dataclass
class _Deferred:
    result: dict[str, Any]
    pending: int
    created: float


@dataclass
class _Window:
    """Per-model (time, tokens) records of the last 60 s, for RPM/TPM limits."""

    events: deque[tuple[float, int]] = field(default_factory=deque)


def tiny_png(index: int = 0) -> bytes:
    """A real 2x2 PNG whose colour depends on `index`."""
    rgb = bytes(((60 * index) % 256, 120, 200))
    raw = b"".join(b"\x00" + rgb * 2 for _ in range(2))

    def chunk(tag: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(tag + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def _tokens(text: str) -> int:
    return math.ceil(len(text) / 4)


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def _images_in(content: Any) -> int:
    if not isinstance(content, list):
        return 0
    return sum(1 for p in content if isinstance(p, dict) and p.get("type") == "image_url")


class FakeXAI:
    def __init__(self, *, api_key: str = API_KEY) -> None:
        self.api_key = api_key
        self.base_url = ""
        self.origin = ""
        self.requests: list[RecordedRequest] = []
        self.streams_cut = 0  # streams whose client closed the connection before the end
        self.stream_ends: list[float] = []  # perf_counter when each streamed response was ended
        self.now: Callable[[], float] = time.time
        self.default_reply: ScriptedReply | None = None
        self.fingerprint = "fp_fake0c0ffee"
        self.moderate_images = False
        self.image_data_prefix = False
        self.image_mime_type = True
        self.force_image_urls = False
        self.include_usage_chunk = True
        self.running_usage = False
        # Benchmarks: when a dict, each streamed write is logged under the request's x-grok-conv-id
        # as (time.perf_counter() as the write starts, answer characters sent with it).
        self.send_log: dict[str, list[tuple[float, int]]] | None = None
        self.report_cost = True
        self.cached_tokens = 0
        self.credits_exhausted: int | None = None
        self.code_style: Literal["grpc", "kebab", "status"] = "grpc"
        self.rpm_limit: int | None = None
        self.tpm_limit: int | None = None
        self.rate_limit_retry_after: float | None = None
        self.api_key_blocked = False
        self.team_blocked = False
        self.api_key_disabled = False
        self.image_url_ttl = 600.0
        self.deferred_ttl = DAY
        self.in_flight = 0
        self.max_in_flight = 0
        self._replies: deque[ScriptedReply] = deque()
        self._failures: deque[_Failure] = deque()
        self._deferred: dict[str, _Deferred] = {}
        self._images: dict[str, tuple[bytes, float]] = {}
        self._windows: dict[str, _Window] = {}
        self._models = {m.id: m for m in LANGUAGE_MODELS}
        self._aliases = {a: m.id for m in LANGUAGE_MODELS for a in m.aliases}
        self._aliases.update({a: i for i, (aliases, _) in IMAGE_MODELS.items() for a in aliases})
        self._runner: web.AppRunner | None = None
        self._closing = asyncio.Event()

    # -- scripting --------------------------------------------------------------------------

    def queue_reply(self, reply: ScriptedReply) -> None:
        self._replies.append(reply)

    def fail_next(
        self,
        status: int,
        times: int = 1,
        body: dict[str, Any] | str | None = None,
        retry_after: float | None = None,
        *,
        path: str | None = None,
    ) -> None:
        """Answer the next `times` /v1 requests (under `path` when given, e.g. "/v1/models")
        with `status` before handling them; `body` a JSON object, a raw text, or None for a
        typical flat error body."""
        self._failures.append(_Failure(status, times, body, retry_after, path))

    def chat_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path == "/v1/chat/completions"]

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self, *, port: int = 0) -> None:
        self._closing = asyncio.Event()
        app = web.Application(middlewares=[self._middleware])
        v1 = "/v1"
        app.router.add_post(f"{v1}/chat/completions", self._chat)
        app.router.add_get(f"{v1}/chat/deferred-completion/{{rid}}", self._deferred_get)
        app.router.add_post(f"{v1}/images/generations", self._images_post)
        app.router.add_get(f"{v1}/models", self._models_list)
        app.router.add_get(f"{v1}/models/{{mid}}", self._model_get)
        app.router.add_get(f"{v1}/language-models", self._language_models)
        app.router.add_get(f"{v1}/language-models/{{mid}}", self._language_model)
        app.router.add_get(f"{v1}/image-generation-models", self._image_models)
        app.router.add_get(f"{v1}/image-generation-models/{{mid}}", self._image_model)
        app.router.add_get(f"{v1}/api-key", self._api_key)
        app.router.add_post(f"{v1}/tokenize-text", self._tokenize)
        app.router.add_get("/xai-imgen/{name}", self._image_file)
        app.router.add_route("*", "/{tail:.*}", self._no_route)
        self._runner = web.AppRunner(app, shutdown_timeout=1.0, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        bound = self._runner.addresses[0][1]
        self.origin = f"http://127.0.0.1:{bound}"
        self.base_url = f"{self.origin}/v1"

    async def stop(self) -> None:
        self._closing.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeXAI:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _pause(self, seconds: float) -> None:
        """Sleep, but wake at once when the server stops (stalls must not hold up shutdown)."""
        if seconds > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), seconds)

    # -- helpers ----------------------------------------------------------------------------

    def error(self, status: int, message: str, *, retry_after: float | None = None) -> web.Response:
        grpc, kebab = CODES.get(status, ("Unknown error", "unknown"))
        code = {"grpc": grpc, "kebab": kebab, "status": str(status)}[self.code_style]
        headers = {} if retry_after is None else {"Retry-After": f"{retry_after:g}"}
        return web.json_response({"code": code, "error": message}, status=status, headers=headers)

    def _resolve(self, name: str) -> str:
        return self._aliases.get(name, name)

    @web.middleware
    async def _middleware(
        self, request: web.Request, handler: Callable[[web.Request], Any]
    ) -> web.StreamResponse:
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        self.requests.append(
            RecordedRequest(request.method, request.path, CIMultiDict(request.headers), body)
        )
        if not request.path.startswith("/v1/"):
            response: web.StreamResponse = await handler(request)
            return response
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            early = self._scripted_failure(request.path) or self._auth(request)
            if early is not None:
                return early
            response = await handler(request)
            return response
        finally:
            self.in_flight -= 1

    def _scripted_failure(self, path: str) -> web.Response | None:
        for failure in self._failures:
            if failure.path is None or path.startswith(failure.path):
                failure.times -= 1
                if failure.times <= 0:
                    self._failures.remove(failure)
                return self._failure_response(failure.status, failure.body, failure.retry_after)
        return None

    def _failure_response(
        self, status: int, body: dict[str, Any] | str | None, retry_after: float | None
    ) -> web.Response:
        headers = {} if retry_after is None else {"Retry-After": f"{retry_after:g}"}
        if isinstance(body, str):
            return web.Response(text=body, status=status, headers=headers)
        if body is not None:
            return web.json_response(body, status=status, headers=headers)
        message = {
            429: "The service is temporarily at capacity. Please retry your request shortly.",
            500: "Internal server error.",
            503: "The service is temporarily unavailable. Please try again later.",
        }.get(status, f"Scripted failure {status}.")
        return self.error(status, message, retry_after=retry_after)

    def _auth(self, request: web.Request) -> web.Response | None:
        header = request.headers.get("Authorization")
        if header is None:
            return self.error(401, "No credentials presented. [WKE=unauthenticated:no-credentials]")
        scheme, _, key = header.partition(" ")
        if scheme.lower() != "bearer" or not key:
            return self.error(401, "Malformed authorization header. [WKE=unauthenticated:bad-header]")
        if key != self.api_key:
            shown = f"{key[:2]}***{key[-2:]}" if len(key) > 4 else "***"
            return self.error(
                400,
                f"Incorrect API key provided: {shown}. You can obtain an API key from https://console.x.ai.",
            )
        if self.credits_exhausted is not None:
            return self.error(self.credits_exhausted, CREDITS_TEXT.format(team=TEAM_ID))
        return None

    def _rate_limited(self, model: str, tokens: int) -> web.Response | None:
        now = self.now()
        window = self._windows.setdefault(model, _Window())
        while window.events and window.events[0][0] <= now - 60:
            window.events.popleft()
        used = sum(t for _, t in window.events)
        retry = self.rate_limit_retry_after
        if self.rpm_limit is not None and len(window.events) + 1 > self.rpm_limit:
            return self.error(
                429,
                f"Too many requests for team {TEAM_ID} and model {model}. Requests per Minute "
                f"(actual/limit): {len(window.events) + 1}/{self.rpm_limit}.",
                retry_after=retry,
            )
        if self.tpm_limit is not None and used + tokens > self.tpm_limit:
            return self.error(
                429,
                f"Too many tokens for team {TEAM_ID} and model {model}. Your team's rate limit is "
                f"— Tokens per Minute (actual/limit): {used + tokens}/{self.tpm_limit}. You can "
                "view your team rate limits at https://console.x.ai.",
                retry_after=retry,
            )
        window.events.append((now, tokens))
        return None

    async def _body(self, request: web.Request) -> dict[str, Any] | web.Response:
        raw = await request.read()
        if not raw:
            return self.error(415, "Expected a JSON body with Content-Type: application/json.")
        try:
            body = json.loads(raw)
        except ValueError:
            return self.error(400, "Failed to deserialize the JSON body into the target type.")
        if not isinstance(body, dict):
            return self.error(422, "Failed to deserialize the JSON body: expected an object.")
        return body

    # -- chat -------------------------------------------------------------------------------

    def _validate_chat(self, body: dict[str, Any]) -> tuple[FakeModel, int] | web.Response:
        messages = body.get("messages")
        if not isinstance(body.get("model"), str) or not isinstance(messages, list):
            return self.error(
                422, "Failed to deserialize the JSON body: missing field `model` or `messages`."
            )
        if not messages:
            return self.error(400, "The messages must not be empty.")
        model = self._models.get(self._resolve(body["model"]))
        if model is None:
            return self.error(
                404,
                f"The model {body['model']} does not exist or your team {TEAM_ID} does not have "
                "access to it. Please ensure you're using the correct API key.",
            )
        if "search_parameters" in body:
            return self.error(410, "Live search is deprecated. Please switch to the Agent Tools API instead.")
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
            _tokens(_text_of(m.get("content"))) + 3 + 256 * _images_in(m.get("content"))
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
            self._deferred[rid] = _Deferred(answer.completion(), pending, self.now())
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

    # -- images -----------------------------------------------------------------------------

    async def _images_post(self, request: web.Request) -> web.StreamResponse:
        body = await self._body(request)
        if isinstance(body, web.Response):
            return body
        name = body.get("model")
        model = self._resolve(name) if isinstance(name, str) else ""
        if model not in IMAGE_MODELS:
            return self.error(
                404, f"The model {name} does not exist or your team {TEAM_ID} does not have access to it."
            )
        for unsupported in ("size", "quality", "style"):
            if unsupported in body:
                return self.error(400, f"Argument not supported: {unsupported}")
        prompt, n, fmt = body.get("prompt"), body.get("n", 1), body.get("response_format", "url")
        if self.force_image_urls and fmt in ("url", "b64_json"):
            fmt = "url"
        if not isinstance(prompt, str) or not prompt:
            return self.error(400, "A prompt is required.")
        if not isinstance(n, int) or not 1 <= n <= 10:
            return self.error(400, f"n must be between 1 and 10, got {n}.")
        if fmt not in ("url", "b64_json"):
            return self.error(400, f"Invalid response_format {fmt!r}: use url or b64_json.")
        if self.moderate_images:
            return web.json_response(
                {"code": "Client specified an invalid argument",
                 "error": "Generated image rejected by content moderation"},
                status=400,
            )  # fmt: skip
        data = []
        for index in range(n):
            png = tiny_png(index)
            item: dict[str, Any] = {"revised_prompt": f"A detailed rendering of: {prompt}"}
            if fmt == "url":
                token = uuid.uuid4().hex[:12]
                self._images[token] = (png, self.now())
                item["url"] = f"{self.origin}/xai-imgen/xai-tmp-imgen-{token}.png"
            else:
                encoded = base64.b64encode(png).decode()
                item["b64_json"] = ("data:image/png;base64," if self.image_data_prefix else "") + encoded
                if self.image_mime_type:
                    item["mime_type"] = "image/png"
            data.append(item)
        cost = IMAGE_MODELS[model][1] * 100_000_000 * n
        return web.json_response({"data": data, "usage": {"cost_in_usd_ticks": cost}})

    async def _image_file(self, request: web.Request) -> web.StreamResponse:
        match = re.fullmatch(r"xai-tmp-imgen-([0-9a-f]+)\.png", request.match_info["name"])
        stored = self._images.get(match.group(1)) if match else None
        if stored is None or self.now() - stored[1] > self.image_url_ttl:
            return web.Response(status=404, text="Not Found")
        return web.Response(body=stored[0], content_type="image/png")

    # -- models, key, tokenizer -------------------------------------------------------------

    def _language_json(self, model: FakeModel) -> dict[str, Any]:
        return {
            "id": model.id, "fingerprint": self.fingerprint, "created": 1743724800,
            "object": "model", "owned_by": "xai", "version": "1.0",
            "input_modalities": ["text", "image"], "output_modalities": ["text"],
            "prompt_text_token_price": model.prices[0], "cached_prompt_text_token_price": model.prices[1],
            "prompt_image_token_price": model.prices[0], "completion_text_token_price": model.prices[2],
            "search_price": 250000000, "aliases": list(model.aliases),
        }  # fmt: skip

    def _image_json(self, mid: str) -> dict[str, Any]:
        aliases, cents = IMAGE_MODELS[mid]
        return {
            "id": mid, "fingerprint": self.fingerprint, "max_prompt_length": 1024,
            "created": 1733961600, "object": "model", "owned_by": "xai", "version": "1.0",
            "input_modalities": ["text"], "output_modalities": ["image"],
            "image_price": cents, "aliases": list(aliases),
        }  # fmt: skip

    async def _models_list(self, request: web.Request) -> web.StreamResponse:
        ids = [*self._models, *IMAGE_MODELS]
        data = [{"id": i, "created": 1752019200, "object": "model", "owned_by": "xai"} for i in ids]
        return web.json_response({"object": "list", "data": data})

    async def _model_get(self, request: web.Request) -> web.StreamResponse:
        mid = self._resolve(request.match_info["mid"])
        if mid not in self._models and mid not in IMAGE_MODELS:
            return self.error(404, f"The model {request.match_info['mid']} does not exist.")
        return web.json_response({"id": mid, "created": 1752019200, "object": "model", "owned_by": "xai"})

    async def _language_models(self, request: web.Request) -> web.StreamResponse:
        return web.json_response({"models": [self._language_json(m) for m in LANGUAGE_MODELS]})

    async def _language_model(self, request: web.Request) -> web.StreamResponse:
        model = self._models.get(self._resolve(request.match_info["mid"]))
        if model is None:
            return self.error(404, f"The model {request.match_info['mid']} does not exist.")
        return web.json_response(self._language_json(model))

    async def _image_models(self, request: web.Request) -> web.StreamResponse:
        return web.json_response({"models": [self._image_json(m) for m in IMAGE_MODELS]})

    async def _image_model(self, request: web.Request) -> web.StreamResponse:
        mid = self._resolve(request.match_info["mid"])
        if mid not in IMAGE_MODELS:
            return self.error(404, f"The model {request.match_info['mid']} does not exist.")
        return web.json_response(self._image_json(mid))

    async def _api_key(self, request: web.Request) -> web.StreamResponse:
        return web.json_response({
            "redacted_api_key": f"xai-...{self.api_key[-4:]}", "user_id": "59fbe5f2-fake-user",
            "name": "Fake key", "team_id": TEAM_ID, "create_time": "2024-01-01T12:55:18.139305Z",
            "modify_time": "2024-08-28T17:20:12.343321Z", "api_key_id": "ae1e1841-fake-key",
            "acls": ["api-key:model:*", "api-key:endpoint:*"], "team_blocked": self.team_blocked,
            "api_key_blocked": self.api_key_blocked, "api_key_disabled": self.api_key_disabled,
        })  # fmt: skip

    async def _tokenize(self, request: web.Request) -> web.StreamResponse:
        body = await self._body(request)
        if isinstance(body, web.Response):
            return body
        if not isinstance(body.get("text"), str):
            return self.error(422, "Failed to deserialize the JSON body: missing field `text`.")
        pieces = re.findall(r"\s?\w+|\s?[^\w\s]", body["text"])
        tokens = [
            {"token_id": zlib.crc32(p.encode()) % 131072, "string_token": p,
             "token_bytes": list(p.encode())}
            for p in pieces
        ]  # fmt: skip
        return web.json_response({"token_ids": tokens})

    async def _no_route(self, request: web.Request) -> web.StreamResponse:
        return self.error(
            404,
            "No handler found on route. Please double check your URL and consult "
            "https://api.x.ai/docs for more information.",
        )


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
        text = reply.text
        if text is None:
            users = [m for m in body["messages"] if isinstance(m, dict) and m.get("role") == "user"]
            text = "Echo: " + (_text_of(users[-1].get("content")) if users else "")
        self.finish = reply.finish_reason
        limit = body.get("max_completion_tokens", body.get("max_tokens"))
        if isinstance(limit, int) and _tokens(text) > limit:
            text, self.finish = text[: limit * 4], "length"
        self.text = text
        self.reasoning = reply.reasoning
        effort = body.get("reasoning_effort")
        resolved = model.id if effort is None or model.id != "grok-3-mini" else f"{model.id}-{effort}"
        self.model_name = reply.model or resolved
        self.prompt = reply.prompt_tokens if reply.prompt_tokens is not None else prompt
        self.images = sum(_images_in(m.get("content")) for m in body["messages"] if isinstance(m, dict))
        self.reasoning_tokens = _tokens(self.reasoning) or (24 if model.reasoning else 0)
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
            "choices": choices, "usage": self.usage(_tokens(self.text), self.reasoning_tokens),
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
        sends = None if log is None else log.setdefault(request.headers.get("x-grok-conv-id", ""), [])
        buffer: list[bytes] = []
        sent_text = sent_reasoning = 0
        try:
            await self.fake._pause(reply.first_token_delay)
            for index, (key, piece) in enumerate(pieces):
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
                    self.usage(_tokens(self.text[:sent_text]), _tokens(self.reasoning[:sent_reasoning]))
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
            final = self.usage(_tokens(self.text), self.reasoning_tokens)
            finish = {"index": 0, "delta": {}, "finish_reason": self.finish}
            buffer.append(self._chunk([finish], final if running else None))
            options = self.body.get("stream_options")
            if self.fake.include_usage_chunk and isinstance(options, dict) and options.get("include_usage"):
                buffer.append(self._chunk([], final))
            buffer.append(b"data: [DONE]\n\n")
            await response.write(b"".join(buffer))
            await self.fake._pause(reply.end_delay)
            self.fake.stream_ends.append(time.perf_counter())
            await response.write_eof()
        except ConnectionResetError:
            self.fake.streams_cut += 1  # the client went away before the end
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


# -- pytest fixtures; import both: from tests.fakes.xai import fake_xai, grok

FAST_RETRY = RetryPolicy(attempts=4, base=0.001, cap=0.005)


@pytest_asyncio.fixture
async def fake_xai() -> AsyncIterator[FakeXAI]:
    """A started FakeXAI, stopped after the test."""
    async with FakeXAI() as fake:
        yield fake


@pytest_asyncio.fixture
async def grok(fake_xai: FakeXAI) -> AsyncIterator[GrokClient]:
    """A GrokClient on a fresh httpx.AsyncClient pointed at `fake_xai`; retry waits near zero."""
    async with httpx.AsyncClient(transport=AsyncioTransport()) as http:
        yield GrokClient(http, api_key=fake_xai.api_key, base_url=fake_xai.base_url, retry=FAST_RETRY)


async def _serve(port: int) -> None:
    fake = FakeXAI()
    await fake.start(port=port)
    try:
        print(f"fake xAI at {fake.base_url} (key {fake.api_key}); Ctrl-C stops it", flush=True)
        await asyncio.Event().wait()
    finally:
        await fake.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run the fake xAI API.")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args.port))


if __name__ == "__main__":
    main()


__all__ = [
    "API_KEY",
    "FAST_RETRY",
    "FakeXAI",
    "Fault",
    "RecordedRequest",
    "ScriptedReply",
    "fake_xai",
    "grok",
    "tiny_png",
]
