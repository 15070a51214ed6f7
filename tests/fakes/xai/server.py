"""The fake xAI server: lifecycle, the request log, scripted failures, auth, rate limits and errors.
Routes come from the mixins of chat.py, responses.py, images.py and listings.py."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import web
from multidict import CIMultiDict

from tests.fakes.xai.chat import ChatRoutes, Deferred
from tests.fakes.xai.images import ImageRoutes
from tests.fakes.xai.listings import ListingRoutes
from tests.fakes.xai.models import (
    API_KEY,
    CODES,
    CREDITS_TEXT,
    DAY,
    IMAGE_MODELS,
    LANGUAGE_MODELS,
    TEAM_ID,
    FakeModel,
)
from tests.fakes.xai.responses import ResponseRoutes
from tests.fakes.xai.scripts import RecordedRequest, ScriptedReply, ScriptedResponse


@dataclass
class _Failure:
    status: int
    times: int
    body: dict[str, Any] | str | None
    retry_after: float | None
    path: str | None


@dataclass
class _Window:
    """Per-model (time, tokens) records of the last 60 s, for RPM/TPM limits."""

    events: deque[tuple[float, int]] = field(default_factory=deque)


class FakeXAI(ChatRoutes, ResponseRoutes, ImageRoutes, ListingRoutes):
    def __init__(self, *, api_key: str = API_KEY) -> None:
        self.api_key = api_key
        self.base_url = ""
        self.origin = ""
        self.requests: list[RecordedRequest] = []
        self.streams_cut = 0  # streams whose client closed the connection before the end
        self.stream_cut = asyncio.Event()  # set at the first such stream (awaitable in tests)
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
        # Benchmarks: when a dict, the write of each tool call's start on /v1/responses, by the
        # request's prompt_cache_key (time.perf_counter() as the write starts).
        self.tool_log: dict[str, list[float]] | None = None
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
        # The Responses API: scripted like chat; `time_scale` real seconds per scripted second of
        # a tool's run (a 40 s X search in 0.4 s at 0.01); without it the route does not exist.
        self.default_response: ScriptedResponse | None = None
        self._response_replies: deque[ScriptedResponse] = deque()
        self.time_scale = 1.0
        self.keepalives_sent = 0
        self.serve_responses = True
        self._failures: deque[_Failure] = deque()
        self._deferred: dict[str, Deferred] = {}
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

    def send_log_key(self, request: web.Request, body: dict[str, Any]) -> str:
        """Under which key a stream's writes go in `send_log`: the request's x-grok-conv-id.
        A benchmark may override it to tell apart the streams of bots that send no such header."""
        return request.headers.get("x-grok-conv-id", "")

    def chat_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path == "/v1/chat/completions"]

    def queue_response(self, reply: ScriptedResponse) -> None:
        """FIFO, used by the next /v1/responses request that passes validation; nothing queued ->
        `default_response`, or "Echo: <last user text>"."""
        self._response_replies.append(reply)

    def responses_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path == "/v1/responses"]

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self, *, port: int = 0) -> None:
        self._closing = asyncio.Event()
        app = web.Application(middlewares=[self._middleware])
        v1 = "/v1"
        app.router.add_post(f"{v1}/chat/completions", self._chat)
        app.router.add_post(f"{v1}/responses", self._responses)
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

    async def _hold(self, event: asyncio.Event) -> None:
        """Wait for `event`, or until the server stops (holds must not hold up shutdown)."""
        waits = [asyncio.ensure_future(event.wait()), asyncio.ensure_future(self._closing.wait())]
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()

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

    def _refused(self, body: dict[str, Any], model: FakeModel | None) -> web.Response:
        """404 for an unknown model, else 410 for Live Search's parameters (either API)."""
        if model is None:
            return self.error(
                404,
                f"The model {body['model']} does not exist or your team {TEAM_ID} does not have "
                "access to it. Please ensure you're using the correct API key.",
            )
        return self.error(410, "Live search is deprecated. Please switch to the Agent Tools API instead.")

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

    async def _no_route(self, request: web.Request) -> web.StreamResponse:
        return self.error(
            404,
            "No handler found on route. Please double check your URL and consult "
            "https://api.x.ai/docs for more information.",
        )
