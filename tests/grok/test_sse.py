"""bot/grok/sse.py against the event-stream format, and against httpx-sse as a reference."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator

import httpx
import pytest
from httpx_sse import EventSource

from bot.grok import Completion, ContentDelta, StreamEnd
from bot.grok.chat import ChatReading
from bot.grok.sse import EventData
from bot.grok.stream import read_stream


def feed_all(pieces: list[bytes]) -> list[bytes]:
    parser = EventData()
    return [data for piece in pieces for data in parser.feed(piece)] + parser.end()


def bytewise(stream: bytes) -> list[bytes]:
    return feed_all([stream[i : i + 1] for i in range(len(stream))])


@pytest.mark.parametrize("newline", [b"\n", b"\r\n", b"\r"])
def test_every_line_ending_and_any_split_give_the_same_events(newline: bytes) -> None:
    stream = newline.join(
        [b'data: {"a": 1}', b"", b"data:x", b"data:  two spaces", b"", b": a comment", b"data", b"", b""]
    )
    expected = [b'{"a": 1}', b"x\n two spaces", b""]
    assert feed_all([stream]) == expected
    assert bytewise(stream) == expected


def test_a_crlf_split_between_pieces_is_one_line_ending() -> None:
    # "\r" ends one piece and "\n" starts the next: not an empty line, so no early event.
    assert feed_all([b"data: a\r", b"\ndata: b\r", b"\n\r", b"\n"]) == [b"a\nb"]


def test_other_fields_comments_and_data_less_events_are_not_data() -> None:
    stream = b"event: ping\nid: 7\nretry: 10\n\n: keep-alive\n\ndatum: no\ndata2: no\n\ndata: yes\n\n"
    assert feed_all([stream]) == [b"yes"]


def test_an_incomplete_event_at_the_end_is_not_dispatched() -> None:
    assert feed_all([b"data: whole\n\ndata: cut"]) == [b"whole"]
    assert feed_all([b"data: whole\n\ndata: no blank line after\n"]) == [b"whole"]


def test_a_byte_order_mark_at_the_start_is_ignored_even_split() -> None:
    assert feed_all([b"\xef\xbb\xbfdata: a\n\n"]) == [b"a"]
    assert feed_all([b"\xef", b"\xbb", b"\xbfdata: a\n\n"]) == [b"a"]
    assert feed_all([b"data: a\n\n\xef\xbb\xbfdata: b\n\n"]) == [b"a"]  # only at the start


async def reference(pieces: list[bytes]) -> list[bytes]:
    """What httpx-sse makes of the same pieces."""

    async def body() -> AsyncIterator[bytes]:
        for piece in pieces:
            yield piece

    response = httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body())
    return [event.data.encode() async for event in EventSource(response).aiter_sse()]


async def test_random_streams_match_httpx_sse() -> None:
    rng = random.Random(20261126)
    fields = [b"data: ", b"data:", b"event: x", b": comment", b"id: 3", b'data: {"k": "v\xc3\xa9"}']
    for _ in range(300):
        lines: list[bytes] = []
        for _ in range(rng.randint(1, 12)):
            lines.extend(
                rng.choice(fields) + bytes([rng.choice(b"ab ")]) * rng.randint(0, 3) for _ in range(3)
            )
            lines.append(b"")
        newline = rng.choice([b"\n", b"\r\n"])
        stream = newline.join(lines) + newline
        cuts = sorted(rng.sample(range(1, len(stream)), k=min(len(stream) - 1, rng.randint(0, 8))))
        pieces = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
        # httpx-sse also dispatches events with an id and no data (the format does not); grokbot
        # skips empty data either way, so the non-empty data must agree.
        ours = [data for data in feed_all(pieces) if data]
        assert ours == [data for data in await reference(pieces) if data], stream


async def test_read_stream_takes_a_stream_with_cr_line_endings_to_its_end() -> None:
    # The last event's blank line is the stream's last byte: only the end of the stream shows a
    # lone CR was a line ending, not the start of a CRLF.
    events = [
        b'data: {"id": "r1", "model": "grok-4", "choices": [{"index": 0, "delta": {"content": "Hi"}}]}',
        b'data: {"id": "r1", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}',
    ]
    body = b"".join(event + b"\r\r" for event in events)

    async def pieces() -> AsyncIterator[bytes]:
        yield body[:40]
        yield body[40:]

    response = httpx.Response(200, headers={"content-type": "text/event-stream"}, content=pieces())
    finished: list[Completion] = []
    seen = [event async for event in read_stream(response, ChatReading(), finished.append)]
    assert seen[0] == ContentDelta("Hi")
    assert isinstance(seen[-1], StreamEnd) and seen[-1].completion.finish_reason == "stop"
    assert finished[0].text == "Hi" and finished[0].model == "grok-4"
