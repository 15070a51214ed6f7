"""Benchmark: stream a long answer from the fake xAI server through GrokClient.stream as fast as it
goes; prints chunks per second and client CPU microseconds per chunk, writes bench/results/grok_stream.json.

The fake runs in a child process, so time.process_time measures the client alone. Beside the client,
a plain httpx-sse loop (aiter_sse + json.loads, nothing else: what the client used before it parsed
the bytes itself, bot/grok/sse.py) for comparison; each with
the fake writing chunks in batches, one chunk per write as fast as it can, and one chunk per write at
100 chunks a second (a chat: each chunk wakes an idle process); each over grokbot's asyncio transport
(bot/grok/net.py) and over httpx's default anyio one. At 100/s, "bare socket reads" is an asyncio
Protocol that only counts what arrives: the cost of being woken once per chunk, on this machine;
"empty timer wake-ups" is the event loop woken 100 times a second by a timer that does nothing.
`--apis` streams the same answer through the Chat Completions path (`GrokClient.stream`) and the
Responses path (`GrokClient.stream_response`), interleaved run by run, and reports CPU per 1,000
tokens of each and their ratio (written to bench/results/grok_stream_apis.json).
Run: /work/venv/bin/python bench/grok_stream.py [--chunks 20000] [--runs 5] [--loop uvloop|asyncio] [--apis]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import platform
import statistics
import sys
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from httpx_sse import aconnect_sse  # noqa: E402

from bench.timing import add_loop_option, run_on  # noqa: E402
from bot.grok import ChatMessage, ChatRequest, ContentDelta, GrokClient, ResponseRequest, StreamEnd  # noqa: E402
from bot.grok.chat import ChatReading  # noqa: E402
from bot.grok.events import ResponseReading  # noqa: E402
from bot.grok.net import AsyncioTransport  # noqa: E402
from bot.grok.sse import EventData  # noqa: E402
from tests.fakes.xai import FakeXAI, ScriptedReply, ScriptedResponse  # noqa: E402

CHUNK_CHARS = 4  # about one token per chunk, like the real API
PACED = "100/s"  # 300 chunks at 100 a second: each chunk wakes an idle process, as in a chat


def serve(conn: Connection, chunks: int) -> None:
    """Child process: two fakes with a long default reply, until told to stop. One writes chunks
    in batches (the client's fastest case), the other one chunk per write and wakeup, as a real
    server does at reading speed (the client then pays its per-read costs for every chunk)."""

    async def main() -> None:
        batched, single, paced = FakeXAI(), FakeXAI(), FakeXAI()
        text = "word" * chunks
        for fake, answer, rate in ((batched, text, None), (single, text, 1e7), (paced, "word" * 300, 100)):
            fake.default_reply = ScriptedReply(text=answer, chunk_chars=CHUNK_CHARS, tokens_per_second=rate)
            fake.default_response = ScriptedResponse(
                text=answer, chunk_chars=CHUNK_CHARS, tokens_per_second=rate
            )
        for fake in (batched, single, paced):
            await fake.start()
        conn.send((batched.base_url, single.base_url, paced.base_url, batched.api_key))
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, conn.recv)
        for fake in (batched, single, paced):
            await fake.stop()

    asyncio.run(main())


def request() -> ChatRequest:
    return ChatRequest(model="grok-3", messages=(ChatMessage("user", "tell me a long story"),))


async def through_client(grok: GrokClient) -> tuple[int, float, float]:
    chunks = 0
    wall, cpu = time.perf_counter(), time.process_time()
    async for event in grok.stream(request()):
        if type(event) is ContentDelta:
            chunks += 1
        elif type(event) is StreamEnd:
            assert len(event.completion.text) == chunks * CHUNK_CHARS
    return chunks, time.perf_counter() - wall, time.process_time() - cpu


async def through_responses(grok: GrokClient) -> tuple[int, float, float]:
    """The same answer as `through_client`, through the Responses API."""
    chunks = 0
    request = ResponseRequest(model="grok-4.3", messages=(ChatMessage("user", "tell me a long story"),))
    wall, cpu = time.perf_counter(), time.process_time()
    async for event in grok.stream_response(request):
        if type(event) is ContentDelta:
            chunks += 1
        elif type(event) is StreamEnd:
            assert len(event.completion.text) == chunks * CHUNK_CHARS
    return chunks, time.perf_counter() - wall, time.process_time() - cpu


async def recorded_bytes(http: httpx.AsyncClient, base_url: str, key: str) -> dict[str, bytes]:
    """One whole streamed answer of each API, as bytes, for the parse-only rows."""
    headers = {"Authorization": f"Bearer {key}"}
    chat = {"model": "grok-3", "messages": [{"role": "user", "content": "x"}], "stream": True}
    responses = {"model": "grok-4.3", "input": [{"role": "user", "content": "x"}], "stream": True}
    out = {}
    for api, path, body in (
        ("chat completions", "/chat/completions", chat),
        ("responses", "/responses", responses),
    ):
        response = await http.post(base_url + path, json=body, headers=headers)
        out[api] = response.content
    return out


def parse_only(api: str, data: bytes) -> tuple[int, float, float]:
    """The hot path without the network: the stream's bytes (in 4 KiB reads) into events."""
    reading: ChatReading | ResponseReading = ChatReading() if api == "chat completions" else ResponseReading()
    parser, take = EventData(), reading.take
    chunks = 0
    wall, cpu = time.perf_counter(), time.process_time()
    for start in range(0, len(data), 4096):
        for event_data in parser.feed(data[start : start + 4096]):
            for event in take(event_data):
                if type(event) is ContentDelta:
                    chunks += 1
    return chunks, time.perf_counter() - wall, time.process_time() - cpu


def ratio_rows(name: str, chat_runs: list[Any], responses_runs: list[Any]) -> list[dict[str, Any]]:
    chat, responses = row(f"chat completions {name}", chat_runs), row(f"responses {name}", responses_runs)
    responses["cpu_ratio_to_chat"] = round(responses["cpu_s"] / chat["cpu_s"], 3)
    return [chat, responses]


async def compare_apis(urls: dict[str, str], key: str, runs: int) -> list[dict[str, Any]]:
    """Chat Completions and the Responses API over grokbot's transport, run after run in turn, so
    both see the same machine load; the Responses row carries its CPU ratio to the chat row."""
    rows = []
    async with httpx.AsyncClient(
        timeout=httpx.Timeout(60.0, connect=10.0), transport=AsyncioTransport()
    ) as http:
        for mode, base_url in urls.items():
            grok = GrokClient(http, api_key=key, base_url=base_url)
            await through_client(grok)  # warm up: connection, imports, caches
            await through_responses(grok)
            chat_runs, responses_runs = [], []
            for _ in range(runs):
                chat_runs.append(await through_client(grok))
                responses_runs.append(await through_responses(grok))
            rows += ratio_rows(mode, chat_runs, responses_runs)
        streams = await recorded_bytes(http, urls["batched"], key)
    parsed: dict[str, list[Any]] = {api: [] for api in streams}
    for _ in range(runs):
        for api, data in streams.items():
            parsed[api].append(parse_only(api, data))
    return [*ratio_rows("parse only", *parsed.values()), *rows]


async def raw_floor(http: httpx.AsyncClient, base_url: str, key: str) -> tuple[int, float, float]:
    body = {"model": "grok-3", "messages": [{"role": "user", "content": "x"}], "stream": True}
    chunks = 0
    wall, cpu = time.perf_counter(), time.process_time()
    headers = {"Authorization": f"Bearer {key}"}
    async with aconnect_sse(http, "POST", f"{base_url}/chat/completions", json=body, headers=headers) as es:
        async for sse in es.aiter_sse():
            if sse.data != "[DONE]":
                chunk = json.loads(sse.data)
                if chunk["choices"] and chunk["choices"][0]["delta"].get("content"):
                    chunks += 1
    return chunks, time.perf_counter() - wall, time.process_time() - cpu


class _Counting(asyncio.Protocol):
    def __init__(self, done: asyncio.Future[int]) -> None:
        self.done = done
        self.reads = 0
        self.tail = b""

    def data_received(self, data: bytes) -> None:
        self.reads += 1
        self.tail = (self.tail + data)[-32:]
        if b"[DONE]" in self.tail and not self.done.done():
            self.done.set_result(self.reads)


async def socket_floor(base_url: str, key: str) -> tuple[int, float, float]:
    """The same stream read by a bare asyncio Protocol that only counts its reads: no HTTP, SSE
    or JSON parsing. What every chunk costs this machine before any library runs."""
    url = httpx.URL(base_url)
    body = json.dumps({"model": "grok-3", "messages": [{"role": "user", "content": "x"}], "stream": True})
    head = (
        f"POST {url.path}/chat/completions HTTP/1.1\r\nHost: {url.host}\r\n"
        f"Authorization: Bearer {key}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    loop = asyncio.get_running_loop()
    done: asyncio.Future[int] = loop.create_future()
    wall, cpu = time.perf_counter(), time.process_time()
    transport, _ = await loop.create_connection(lambda: _Counting(done), url.host, url.port)
    transport.write(head.encode() + body.encode())
    reads = await done
    transport.close()
    return reads, time.perf_counter() - wall, time.process_time() - cpu


def row(name: str, runs: list[tuple[int, float, float]]) -> dict[str, Any]:
    chunks = runs[0][0]
    wall = statistics.median(r[1] for r in runs)
    cpu = statistics.median(r[2] for r in runs)
    return {
        "path": name,
        "chunks": chunks,
        "runs": len(runs),
        "wall_s": round(wall, 4),
        "cpu_s": round(cpu, 4),
        "chunks_per_s": round(chunks / wall),
        "cpu_us_per_chunk": round(cpu / chunks * 1e6, 2),
        "cpu_s_per_1000_chunks": round(cpu / chunks * 1000, 4),
    }


async def timer_floor(wakes: int = 300) -> tuple[int, float, float]:
    """The event loop woken by a timer 100 times a second, doing nothing else: what one wake-up
    costs this machine with no socket, parser or library involved."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()
    count = 0
    start = loop.time()

    def tick() -> None:
        nonlocal count
        count += 1
        if count < wakes:
            loop.call_at(start + (count + 1) * 0.01, tick)  # on a fixed grid: 100 a second
        else:
            done.set_result(None)

    wall, cpu = time.perf_counter(), time.process_time()
    loop.call_at(start + 0.01, tick)
    await done
    return wakes, time.perf_counter() - wall, time.process_time() - cpu


async def measure(urls: dict[str, str], key: str, runs: int) -> list[dict[str, Any]]:
    """Each read path over grokbot's transport (bot/grok/net.py) and over httpx's default."""
    timeout = httpx.Timeout(60.0, connect=10.0)
    rows = []
    for net in ("asyncio", "anyio"):
        transport = AsyncioTransport() if net == "asyncio" else None
        async with httpx.AsyncClient(timeout=timeout, transport=transport) as http:
            for mode, base_url in urls.items():
                grok = GrokClient(http, api_key=key, base_url=base_url)
                await through_client(grok)  # warm up: connection, imports, caches
                await raw_floor(http, base_url, key)
                client_runs = [await through_client(grok) for _ in range(runs)]
                floor_runs = [await raw_floor(http, base_url, key) for _ in range(runs)]
                rows.append(row(f"GrokClient {mode} {net}", client_runs))
                rows.append(row(f"raw httpx-sse {mode} {net}", floor_runs))
                if mode == PACED and net == "asyncio":
                    socket_runs = [await socket_floor(base_url, key) for _ in range(runs)]
                    rows.append(row(f"bare socket reads {mode}", socket_runs))
                    rows.append(
                        row(f"empty timer wake-ups {mode}", [await timer_floor() for _ in range(runs)])
                    )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--apis", action="store_true", help="compare Chat Completions and the Responses API")
    add_loop_option(parser)
    args = parser.parse_args()
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    server = context.Process(target=serve, args=(child, args.chunks), daemon=True)
    server.start()
    try:
        batched_url, single_url, paced_url, key = parent.recv()
        urls = {"batched": batched_url, "1/write": single_url, PACED: paced_url}
        rows = run_on(args.loop, (compare_apis if args.apis else measure)(urls, key, args.runs))
    finally:
        parent.send("stop")
        server.join(timeout=10)
    print(
        f"{'path':<34} {'chunks':>7} {'chunks/s':>10} {'CPU µs/chunk':>13} {'CPU s/1k chunks':>16} "
        f"{'ratio':>6}"
    )
    for r in rows:
        print(
            f"{r['path']:<34} {r['chunks']:>7} {r['chunks_per_s']:>10} "
            f"{r['cpu_us_per_chunk']:>13} {r['cpu_s_per_1000_chunks']:>16} "
            f"{r.get('cpu_ratio_to_chat', ''):>6}"
        )
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    result = {
        "benchmark": "grok_stream",
        "chunk_chars": CHUNK_CHARS,
        "loop": args.loop,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "results": rows,
    }
    name = "grok_stream_apis.json" if args.apis else "grok_stream.json"
    (out / name).write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out / name}")


if __name__ == "__main__":
    main()
