"""Reading a streamed answer of either API: event data from the response's bytes (bot/grok/sse.py)
into a Reading that knows its API's events, the gathering of reads, and the end of a stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import Any, Protocol

import httpx

from bot.errors import GrokStreamBroken
from bot.grok.sse import EventData
from bot.grok.types import Completion, StreamEnd, StreamEvent

log = logging.getLogger(__name__)

# After a stream's text (or reasoning) starts, its reads are gathered up to this long
# (bot/grok/net.py): a chat shows the answer once a second, and the first words and the end still
# go out at once. Each token then costs a fraction of a wake-up. A reader that shows the text at
# set times calls `Gathering.flush()` just before each showing, so nothing it shows is late;
# another reader gets each chunk at most this much later.
READ_GATHER_S = 0.25
DRAIN_S = (
    0.5  # after the end event, how long the rest of the response may take before the connection is dropped
)
SSE_HEADERS = {"Accept": "text/event-stream", "Cache-Control": "no-store"}


class Reading(Protocol):
    """What one API's stream has said so far. `take` turns one event's data into stream events."""

    text: list[str]
    reasoning: list[str]

    @property
    def urgent(self) -> tuple[bytes, ...]:
        """Bytes that end a gathered wait at once (the end, a new item)."""

    @property
    def done(self) -> bool:
        """The end was read: read no further before StreamEnd."""

    @property
    def gather(self) -> bool:
        """Reads may be gathered now (the answer is streaming, no tool or status is due)."""

    def take(self, data: bytes) -> tuple[StreamEvent, ...]: ...

    def missing(self) -> str | None:
        """What the stream lacks to be whole (None when it is), named for the log."""

    def completion(self) -> Completion: ...


class Gathering:
    """The gathering of one stream's reads (bot/grok/net.py): on while the answer's text streams,
    off at its end and whenever an event must reach the reader at once. A reader that shows the
    text at set times passes its own to `GrokClient.stream` (or `stream_response`) and calls
    `flush()` just before each showing, which hands what the connection holds to the stream at
    once; it must then yield (`asyncio.sleep(0)`) for the data to be parsed. Every call is a no-op
    while nothing gathers."""

    def __init__(self) -> None:
        self._network: Any = None  # the open stream's connection while it gathers

    def flush(self) -> None:
        if self._network is not None:
            self._network.flush()

    def start(self, network: Any, seconds: float, urgent: tuple[bytes, ...] = (b"[DONE]",)) -> None:
        """Gather the reads of `network` (when it can: net.AsyncioStream) up to `seconds`; data
        containing any of `urgent` goes through at once."""
        if seconds and hasattr(network, "gather"):
            network.gather(seconds, urgent=urgent)
            self._network = network

    def stop(self) -> None:
        """Hand each read over at once again (the rest of the response is due, an event must not
        wait, or the connection goes back to the pool)."""
        if self._network is not None:
            self._network.gather(0.0)
            self._network = None


async def read_stream(
    response: httpx.Response,
    reading: Reading,
    finished: Callable[[Completion], None],
    gathering: Gathering | None = None,
    seconds: float = 0.0,
) -> AsyncGenerator[StreamEvent, None]:
    """The events of an open 200 stream, ending with StreamEnd; GrokStreamBroken (with what had
    arrived) on a garbled line, a cut or stalled connection, or an end the reading misses.
    The hot path: the response's bytes split into event data (bot/grok/sse.py), then one
    json.loads and a few dict lookups per event (the reading's `take`)."""
    if response.headers.get("content-type", "").partition(";")[0].strip() != "text/event-stream":
        raise broken("an answer that is not an event stream", reading)
    parser = EventData()
    take = reading.take
    pieces = response.aiter_bytes()
    network = response.extensions.get("network_stream") if gathering is not None else None
    gathers = False
    try:
        try:
            async for piece in pieces:
                for data in parser.feed(piece):
                    for event in take(data):
                        yield event
                    if reading.done:
                        break
                if reading.done:
                    break
                if network is not None and reading.gather is not gathers:
                    gathers = not gathers
                    _gather(gathering, network, seconds, reading.urgent if gathers else None)
            else:  # the response ended; a last line may have waited for its end
                for data in parser.end():
                    for event in take(data):
                        yield event
        finally:
            if gathers:
                _gather(gathering, network, seconds, None)
    except (ValueError, TypeError, AttributeError, IndexError, KeyError) as exc:
        raise broken("a garbled line", reading) from exc
    except httpx.TimeoutException as exc:
        raise broken("a stall (read timeout)", reading) from exc
    except httpx.HTTPError as exc:
        raise broken("a cut connection", reading) from exc
    completion = _whole(reading)
    finished(completion)
    try:
        yield StreamEnd(completion)
    finally:
        # Read past the end only now, when the reader has it (and closes the stream): under load
        # the response's last bytes can lag, and the last words must not wait for them.
        if reading.done:
            await _drain(pieces)


def _whole(reading: Reading) -> Completion:
    """The completion of a stream read to its end, or GrokStreamBroken when its end is missing."""
    missing = reading.missing()
    if missing is not None:
        raise broken(missing, reading)
    return reading.completion()


def _gather(
    gathering: Gathering | None, network: Any, seconds: float, urgent: tuple[bytes, ...] | None
) -> None:
    """Start gathering the reads (urgent bytes given) or stop it (None)."""
    if gathering is None:
        return
    if urgent is None:
        gathering.stop()
    else:
        gathering.start(network, seconds, urgent)


async def _drain(events: AsyncIterator[Any]) -> None:
    """Read past the end event to the end of the response (normally already arrived with it), so
    its connection goes back to the pool instead of being closed: the next answer then starts
    without a new TCP and TLS handshake. A server that keeps the stream open gets DRAIN_S, then
    the close."""
    with contextlib.suppress(TimeoutError, httpx.HTTPError):
        async with asyncio.timeout(DRAIN_S):
            async for _ in events:
                pass


def broken(what: str, reading: Reading) -> GrokStreamBroken:
    text, reasoning = reading.text, reading.reasoning
    log.warning("grok stream broken by %s after %d pieces", what, len(text) + len(reasoning))
    return GrokStreamBroken(
        f"the answer from xAI stopped early: {what}", text="".join(text), reasoning="".join(reasoning)
    )
