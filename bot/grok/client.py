"""GrokClient: chat (whole, streamed, deferred, structured), image generation, model and key
listings and live prices over one shared httpx.AsyncClient, with pacing and retries.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import fnmatch
import functools
import json
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Any
from urllib.parse import quote

import httpx
import jsonschema

from bot.errors import (
    BadInput,
    DeferredGone,
    GrokError,
    GrokInvalidOutput,
    GrokRejected,
    GrokStreamBroken,
    GrokUnavailable,
)
from bot.grok.images import decode_base64_image, sniff_image_type
from bot.grok.pacing import Pacing, Permit, RetryPolicy
from bot.grok.pricing import PriceBook, estimate_prompt_tokens
from bot.grok.sse import EventData
from bot.grok.transport import Attempts, Failure, Observer, Timeouts, Transport, json_object
from bot.grok.types import (
    ApiKeyInfo,
    ChatRequest,
    Completion,
    ContentDelta,
    GeneratedImage,
    ImageResult,
    ModelInfo,
    ReasoningDelta,
    StreamEnd,
    StreamEvent,
)
from bot.grok.wire import (
    chat_body,
    parse_api_key,
    parse_completion,
    parse_image_model,
    parse_language_model,
    parse_usage,
)

log = logging.getLogger(__name__)

# Models that take `reasoning_effort` (reference §2; it changes with every generation).
REASONING_EFFORT_MODELS = ("grok-3-mini*", "grok-4.3*", "grok-4.5*", "grok-4.6*")
OUTPUT_ESTIMATE = 1024  # tokens reserved for a reply whose max_tokens is not set
# After a stream's first event, its reads are gathered up to this long (bot/grok/net.py): a chat
# shows the answer once a second, and the first words and the end ([DONE]) still go out at once.
# Each token then costs a fraction of a wake-up. A reader that shows the text at set times calls
# `Gathering.flush()` just before each showing, so nothing it shows is late; another reader gets
# each chunk at most this much later.
READ_GATHER_S = 0.25
DRAIN_S = 0.5  # after [DONE], how long the rest of the response may take before the connection is dropped
SSE_HEADERS = {"Accept": "text/event-stream", "Cache-Control": "no-store"}


class Gathering:
    """The gathering of one stream's reads (bot/grok/net.py): on from its first event, off at
    [DONE] and at its end. A reader that shows the text at set times passes its own to
    `GrokClient.stream` and calls `flush()` just before each showing, which hands what the
    connection holds to the stream at once; it must then yield (`asyncio.sleep(0)`) for the data
    to be parsed. Every call is a no-op while nothing gathers."""

    def __init__(self) -> None:
        self._network: Any = None  # the open stream's connection while it gathers

    def flush(self) -> None:
        if self._network is not None:
            self._network.flush()

    def start(self, network: Any, seconds: float) -> None:
        """Gather the reads of `network` (when it can: net.AsyncioStream) up to `seconds`."""
        if seconds and hasattr(network, "gather"):
            network.gather(seconds, urgent=b"[DONE]")
            self._network = network

    def stop(self) -> None:
        """Hand each read over at once again (the rest of the response is due, or the
        connection goes back to the pool)."""
        if self._network is not None:
            self._network.gather(0.0)
            self._network = None


class GrokClient:
    """xAI's REST API, typed. Give it one shared httpx.AsyncClient (closed by its owner)."""

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

    # -- chat -------------------------------------------------------------------------------

    def takes_reasoning_effort(self, model: str) -> bool:
        return any(fnmatch.fnmatchcase(model, p) for p in self.reasoning_effort_models)

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

    async def stream(
        self, request: ChatRequest, *, gathering: Gathering | None = None
    ) -> AsyncGenerator[StreamEvent, None]:
        """Deltas as they arrive, then exactly one StreamEnd. Retries happen only before the
        stream opened; any break after that raises GrokStreamBroken with what had arrived.
        Close it (`contextlib.aclosing`) when stopping early, so its slot is released."""
        body, headers, tokens = self._chat(request)
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
        transport = self.transport
        transport.check_open()
        attempts = Attempts(transport, body)
        url = transport.base_url + "/chat/completions"
        while True:
            failure: Failure
            async with self.pacing.slot(request.model, tokens=tokens) as permit:
                try:
                    async with transport.http.stream(
                        "POST",
                        url,
                        json=attempts.body,
                        headers={**headers, **SSE_HEADERS},
                        timeout=transport.stream_timeout,
                    ) as response:
                        if response.status_code == 200:
                            finished = functools.partial(self._finished, permit=permit, how="stream")
                            reads = gathering or Gathering()
                            first = True
                            events = read_stream(response, finished, reads.stop)
                            try:
                                async for event in events:
                                    yield event
                                    if first:  # it went out at once; the rest may gather
                                        first = False
                                        network = response.extensions.get("network_stream")
                                        reads.start(network, self.read_gather_s)
                            finally:
                                reads.stop()
                                # After StreamEnd: reads the response to its end (see read_stream)
                                await events.aclose()
                            return
                        await response.aread()
                        failure = Failure.of(response)
                except httpx.TransportError as exc:
                    failure = Failure(exc=exc)
            await attempts.recover(failure)  # outside the slot: waiting holds no capacity

    def _finished(self, completion: Completion, *, permit: Permit | None, how: str) -> None:
        usage = completion.usage
        if permit is not None and usage is not None:
            permit.settle(usage.total_tokens)
        log.info(
            "grok %s id=%s model=%s finish=%s prompt=%d completion=%d reasoning=%d fp=%s",
            how,
            completion.id,
            completion.model,
            completion.finish_reason,
            usage.prompt_tokens if usage else -1,
            usage.completion_tokens if usage else -1,
            usage.reasoning_tokens if usage else -1,
            completion.fingerprint,
        )

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

    # -- images -----------------------------------------------------------------------------

    async def generate_images(
        self, *, model: str, prompt: str, n: int = 1, user: str | None = None
    ) -> ImageResult:
        if not 1 <= n <= 10:
            raise BadInput("Grok makes 1 to 10 images at a time.")
        body: dict[str, Any] = {
            "model": model,
            "prompt": prompt,
            "n": n,
            "response_format": "b64_json",
        }
        if user is not None:
            body["user"] = user
        response, _ = await self.transport.call(
            "POST", "/images/generations", body=body, model=model, tokens=0
        )
        raw = json_object(response)
        items = raw.get("data")
        if not isinstance(items, list) or not items:
            raise GrokUnavailable("xAI answered the image request without images")
        images = [await self._image(item) for item in items]
        usage = raw.get("usage")
        cost = usage.get("cost_in_usd_ticks") if isinstance(usage, dict) else None
        result = ImageResult(
            images=tuple(images),
            model=str(raw.get("model") or model),
            cost_ticks=cost if isinstance(cost, int) else None,
        )
        log.info("grok images model=%s n=%d cost_ticks=%s", result.model, len(images), cost)
        return result

    async def _image(self, item: Any) -> GeneratedImage:
        if not isinstance(item, dict):
            raise GrokUnavailable("xAI sent an unreadable image item")
        declared: str | None = None
        if isinstance(item.get("b64_json"), str) and item["b64_json"]:
            try:
                data, declared = decode_base64_image(item["b64_json"])
            except ValueError:
                raise GrokUnavailable("xAI sent an image that is not base64") from None
        elif isinstance(item.get("url"), str) and item["url"]:
            data, declared = await self._download(item["url"])
        else:
            raise GrokUnavailable("xAI sent an image item with neither b64_json nor url")
        stated = item.get("mime_type")
        mime = (stated if isinstance(stated, str) else None) or sniff_image_type(data) or declared
        return GeneratedImage(
            data=data,
            mime_type=mime or "application/octet-stream",
            revised_prompt=str(item.get("revised_prompt") or ""),
        )

    async def _download(self, url: str) -> tuple[bytes, str | None]:
        """A generated image's temporary URL, fetched at once (without our key: it is not xAI's API)."""
        try:
            response = await self.transport.http.get(url, timeout=self.transport.timeout)
        except httpx.TransportError as exc:
            raise GrokUnavailable(f"a generated image could not be downloaded: {exc!r}") from exc
        if response.status_code != 200:
            raise GrokUnavailable(
                f"a generated image could not be downloaded ({response.status_code})",
                status=response.status_code,
            )
        content_type = response.headers.get("content-type", "").split(";", 1)[0].strip()
        return response.content, content_type if content_type.startswith("image/") else None

    # -- models, key, prices ----------------------------------------------------------------

    async def list_models(self) -> list[str]:
        response, _ = await self.transport.call("GET", "/models")
        data = json_object(response).get("data")
        return [str(m["id"]) for m in data if isinstance(m, dict) and "id" in m] if data else []

    async def language_models(self) -> list[ModelInfo]:
        return await self._models("/language-models", parse_language_model)

    async def image_models(self) -> list[ModelInfo]:
        return await self._models("/image-generation-models", parse_image_model)

    async def _models(self, path: str, parse: Callable[[Mapping[str, Any]], ModelInfo]) -> list[ModelInfo]:
        response, _ = await self.transport.call("GET", path)
        models = json_object(response).get("models")
        try:
            return [parse(m) for m in models or ()]
        except (KeyError, TypeError) as exc:
            raise GrokUnavailable(f"xAI sent an unreadable model list from {path}") from exc

    async def api_key_info(self) -> ApiKeyInfo:
        response, _ = await self.transport.call("GET", "/api-key")
        return parse_api_key(json_object(response))

    async def refresh_prices(self) -> bool:
        """Load live prices into `self.prices`; False (the table unchanged) when unreachable."""
        try:
            language = await self.language_models()
            image = await self.image_models()
        except GrokError as exc:
            log.warning("grok price refresh failed (%s); keeping the current table", type(exc).__name__)
            return False
        self.prices.update(language=language, image=image)
        log.info("grok prices refreshed: %d language, %d image models", len(language), len(image))
        return True


def _nothing() -> None:
    pass


class _Reading:
    """What a stream has said so far; `take` reads one event's data."""

    def __init__(self) -> None:
        self.text: list[str] = []
        self.reasoning: list[str] = []
        self.cid = self.model = self.fingerprint = self.finish = ""
        self.usage: Any = None
        self.done = False  # [DONE] arrived

    def take(self, data: bytes) -> tuple[StreamEvent, ...]:
        """The deltas in one event's data (usually one; none for usage, finish or [DONE])."""
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
                raise _broken("an error event", self.text, self.reasoning)
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


async def read_stream(
    response: httpx.Response, finished: Callable[[Completion], None], ended: Callable[[], None] = _nothing
) -> AsyncGenerator[StreamEvent, None]:
    """The events of an open 200 stream, ending with StreamEnd; GrokStreamBroken (with what had
    arrived) on a garbled line, a cut or stalled connection, or an end without [DONE] or finish.
    The hot path: the response's bytes split into event data (bot/grok/sse.py), then one
    json.loads and a few dict lookups per chunk."""
    reading = _Reading()
    if response.headers.get("content-type", "").partition(";")[0].strip() != "text/event-stream":
        raise _broken("an answer that is not an event stream", reading.text, reading.reasoning)
    parser = EventData()
    take = reading.take
    pieces = response.aiter_bytes()
    try:
        async for piece in pieces:
            for data in parser.feed(piece):
                for event in take(data):
                    yield event
                if reading.done:
                    break
            if reading.done:
                ended()
                break
        else:  # the response ended; a last line may have waited for its end
            for data in parser.end():
                for event in take(data):
                    yield event
    except (ValueError, TypeError, AttributeError, IndexError) as exc:
        raise _broken("a garbled line", reading.text, reading.reasoning) from exc
    except httpx.TimeoutException as exc:
        raise _broken("a stall (read timeout)", reading.text, reading.reasoning) from exc
    except httpx.HTTPError as exc:
        raise _broken("a cut connection", reading.text, reading.reasoning) from exc
    if not reading.done and not reading.finish:
        raise _broken("an end without [DONE]", reading.text, reading.reasoning)
    completion = reading.completion()
    finished(completion)
    try:
        yield StreamEnd(completion)
    finally:
        # Read past [DONE] only now, when the reader has the end (and closes the stream): under
        # load the response's last bytes can lag, and the last words must not wait for them.
        if reading.done:
            await _drain(pieces)


async def _drain(events: AsyncIterator[Any]) -> None:
    """Read past [DONE] to the end of the response (normally already arrived with it), so its
    connection goes back to the pool instead of being closed: the next answer then starts without
    a new TCP and TLS handshake. A server that keeps the stream open gets DRAIN_S, then the close."""
    with contextlib.suppress(TimeoutError, httpx.HTTPError):
        async with asyncio.timeout(DRAIN_S):
            async for _ in events:
                pass


def _broken(what: str, text: list[str], reasoning: list[str]) -> GrokStreamBroken:
    log.warning("grok stream broken by %s after %d pieces", what, len(text) + len(reasoning))
    return GrokStreamBroken(
        f"the answer from xAI stopped early: {what}", text="".join(text), reasoning="".join(reasoning)
    )
