"""Engine streaming benchmark: 1 and 200 concurrent answers from the xAI fake into a FakePlatform.

Reports, per run: delay from the fake writing each chunk to the platform edit that shows it
(p50/p99), first visible text after the first upstream token (p50/p99), the whole answer visible
after the last upstream token (p50/p99), CPU seconds per 1,000 streamed tokens (this process only:
the fake runs in its own process) beside the Grok client's own share (the same streams read with no
engine), and memory per active conversation (tracemalloc, in a separate pass). Runs of fewer than
20 streams repeat (--repeat) and report the median. Each run starts after one unmeasured warm-up
answer. Writes bench/results/engine_stream.json.

    python bench/engine_stream.py [--streams 1 200] [--words 300] [--tps 100] [--interval 1.0] [--repeat 5]
        [--gather 0.25]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import subprocess
import sys
import tempfile
import time
import tracemalloc
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.timing import TimedGrok, add_loop_option, run_on, to_send_times  # noqa: E402
from bot.db import create_engine, session_factory, upgrade  # noqa: E402
from bot.engine import Engine  # noqa: E402
from bot.grok import ChatMessage, ChatRequest, GrokClient, Pacing  # noqa: E402
from bot.grok.client import READ_GATHER_S  # noqa: E402
from bot.grok.net import AsyncioTransport  # noqa: E402
from bot.platform import Author, Incoming, Place  # noqa: E402
from bot.quotas import Quotas  # noqa: E402
from bot.settings import Settings  # noqa: E402
from tests.fakes.platform import DEFAULT_CAPABILITIES, FakePlatform  # noqa: E402

API_KEY = "xai-test-key"
G = TypeVar("G", bound=GrokClient)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_fake(port: int, *, words: int, tps: float) -> subprocess.Popen[bytes]:
    text = " ".join(f"word{i}" for i in range(words))
    setup = f"fake.default_reply = ScriptedReply(text={text!r}, chunk_chars=6, tokens_per_second={tps})"
    return fake_process(port, setup, log="send_log")


def fake_process(port: int, setup: str, *, log: str) -> subprocess.Popen[bytes]:
    """The xAI fake in its own process, scripted by `setup` (lines of Python run with `fake` and
    tests.fakes.xai's names); each line written to its stdin answers with its `log` (send_log,
    tool_log) as JSON, then clears it."""
    body = "".join(f"    {line}\n" for line in setup.splitlines())
    script = (
        "import asyncio, json, sys\n"
        "from tests.fakes.xai import *\n"
        "async def main():\n"
        "    fake = FakeXAI()\n"
        f"{body}"
        f"    fake.{log} = {{}}\n"
        f"    await fake.start(port={port})\n"
        "    print('ready', flush=True)\n"
        "    loop = asyncio.get_running_loop()\n"
        "    while await loop.run_in_executor(None, sys.stdin.readline):  # each line asks for the log\n"
        f"        print(json.dumps(fake.{log}), flush=True)\n"
        f"        fake.{log}.clear()\n"
        "asyncio.run(main())\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE, stdin=subprocess.PIPE
    )
    assert process.stdout is not None
    process.stdout.readline()
    return process


def read_log(fake: subprocess.Popen[bytes]) -> Any:
    """The log the fake's process keeps (fake_process), since the last call."""
    assert fake.stdin is not None and fake.stdout is not None
    fake.stdin.write(b"dump\n")
    fake.stdin.flush()
    return json.loads(fake.stdout.readline())


def http_for(streams: int) -> httpx.AsyncClient:
    """The service's kind of HTTP client, with a connection for every stream."""
    return httpx.AsyncClient(transport=AsyncioTransport(limits=httpx.Limits(max_connections=streams + 8)))


def grok_for(
    cls: type[GrokClient], http: httpx.AsyncClient, streams: int, base_url: str, gather: float
) -> Any:
    return cls(
        http, api_key=API_KEY, base_url=base_url, pacing=Pacing(concurrency=streams), read_gather_s=gather
    )


async def client_alone(streams: int, *, base_url: str, gather: float) -> float:
    """CPU seconds per 1,000 chunks for the same streams read by the Grok client with no engine."""
    async with http_for(streams) as http:
        grok = grok_for(GrokClient, http, streams, base_url, gather)
        request = ChatRequest(model="grok-4.3", messages=(ChatMessage("user", "tell me a story"),))
        chunks = 0

        async def one() -> None:
            nonlocal chunks
            async for _event in grok.stream(request):
                chunks += 1

        cpu0 = time.process_time()
        await asyncio.gather(*(one() for _ in range(streams)))
        return (time.process_time() - cpu0) / max(1, chunks) * 1000


def send_log(fake: subprocess.Popen[bytes]) -> dict[str, list[list[float]]]:
    """The fake's writes since the last call: (time, answer characters sent) per conversation."""
    log: dict[str, list[list[float]]] = read_log(fake)
    return log


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run(
    streams: int,
    *,
    fake: subprocess.Popen[bytes],
    base_url: str,
    interval: float,
    gather: float,
    measure_memory: bool,
) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp())
    url = f"sqlite+aiosqlite:///{workdir / 'bench.db'}"
    await asyncio.to_thread(upgrade, url)
    db = create_engine(url)
    sessions = session_factory(db)
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        xai_api_key=API_KEY,
        xai_base_url=base_url,
        grokbot_edit_interval_s=interval,
        grokbot_xai_api="chat",  # the streams TimedGrok times (bench/search_stream.py: the Responses API)
    )
    caps = replace(
        DEFAULT_CAPABILITIES, max_message_length=100_000, edit_interval=interval, scope_edits_per_minute=1e6
    )
    platform = FakePlatform(capabilities=caps)
    async with http_for(streams) as http:
        grok = grok_for(TimedGrok, http, streams, base_url, gather)
        quotas = Quotas(sessions, settings, clock=lambda: datetime.now(UTC))
        engine = Engine(settings, grok=grok, sessions=sessions, quotas=quotas)
        # One answer first, unmeasured: a running service has its connections open and its SQL
        # statements compiled; the first request of a process pays for those once.
        warm = Incoming(Place("bench", "warm", "c", "t"), Author("warm", "warm"), text="hi", message_id="w")
        await engine.handle(warm, FakePlatform(capabilities=caps))
        grok.arrivals.clear()
        TimedGrok.marks.clear()
        send_log(fake)
        incomings = [
            Incoming(
                place=Place("bench", f"w{n}", "c", f"t{n}"),
                author=Author(f"u{n}", f"user{n}"),
                text="tell me a story",
                message_id=f"m{n}",
            )
            for n in range(streams)
        ]
        if measure_memory:
            tracemalloc.start()
            before = tracemalloc.take_snapshot()
        cpu0, wall0 = time.process_time(), time.perf_counter()
        tasks = [asyncio.create_task(engine.handle(i, platform)) for i in incomings]
        peak_per_conversation = 0.0
        if measure_memory:
            await asyncio.sleep(2.0)  # mid-answer: every stream is active
            during = tracemalloc.take_snapshot()
            grown = sum(s.size_diff for s in during.compare_to(before, "filename"))
            peak_per_conversation = grown / streams
            tracemalloc.stop()
        await asyncio.gather(*tasks)
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    await db.dispose()
    # Each delta timed from when the fake wrote it, not from when the bot parsed it.
    sends = send_log(fake)
    for conv, arrivals in grok.arrivals.items():
        grok.arrivals[conv] = to_send_times(arrivals, sends[conv])

    # Match each upstream chunk to the first edit of its message that shows it.
    by_message: dict[str, list[tuple[float, int]]] = {}
    for event in platform.events:
        if event.kind in {"update", "finish"}:
            by_message.setdefault(event.message_id, []).append((event.at, len(event.text)))
    delays: list[float] = []
    first: list[float] = []
    last: list[float] = []
    tokens = 0
    for message, arrivals in zip(platform.messages, grok.arrivals.values(), strict=False):
        edits = by_message.get(message.id, [])
        tokens += len(arrivals)
        final_length = edits[-1][1] if edits else 0
        offset = final_length - arrivals[-1][1] if arrivals else 0  # any prefix the engine added
        for at, length in arrivals:
            shown = next((t for t, n in edits if n >= length + offset and t >= at), None)
            if shown is not None:
                delays.append(shown - at)
        if arrivals and edits:
            first.append(edits[0][0] - arrivals[0][0])
            last.append(edits[-1][0] - arrivals[-1][0])
    return {
        "streams": streams,
        "edit_interval_s": interval,
        "wall_s": round(wall, 3),
        "tokens": tokens,
        "chunk_to_edit_ms_p50": round(pct(delays, 0.50) * 1000, 2),
        "chunk_to_edit_ms_p99": round(pct(delays, 0.99) * 1000, 2),
        "first_visible_ms_p50": round(pct(first, 0.50) * 1000, 2),
        "first_visible_ms_p99": round(pct(first, 0.99) * 1000, 2),
        "whole_visible_after_last_ms_p50": round(pct(last, 0.50) * 1000, 2),
        "whole_visible_after_last_ms_p99": round(pct(last, 0.99) * 1000, 2),
        "cpu_s_per_1k_tokens": round(cpu / max(1, tokens) * 1000, 4),
        "memory_kib_per_conversation": round(peak_per_conversation / 1024, 1) if measure_memory else None,
        "edits": sum(len(v) for v in by_message.values()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--streams", type=int, nargs="+", default=[1, 200])
    parser.add_argument("--words", type=int, default=300)
    parser.add_argument("--tps", type=float, default=100.0, help="upstream tokens (chunks) per second")
    parser.add_argument("--interval", type=float, default=1.0, help="edit interval in seconds")
    parser.add_argument(
        "--repeat", type=int, default=5, help="runs of fewer than 20 streams (median reported)"
    )
    parser.add_argument(
        "--gather", type=float, default=READ_GATHER_S, help="seconds a stream's reads gather (0: none)"
    )
    add_loop_option(parser)
    args = parser.parse_args()
    run_on(args.loop, measure(args))


async def measure(args: argparse.Namespace) -> None:
    port = free_port()
    fake = start_fake(port, words=args.words, tps=args.tps)
    base_url = f"http://127.0.0.1:{port}/v1"
    results = []
    timing = {"interval": args.interval, "gather": args.gather}
    try:
        for streams in args.streams:
            # One answer's CPU varies by a third from run to run on a shared machine: small runs
            # repeat, interleaved with the client-alone runs, and report the median run.
            runs, alones = [], []
            for _ in range(args.repeat if streams < 20 else 1):
                runs.append(await run(streams, fake=fake, base_url=base_url, **timing, measure_memory=False))
                alones.append(round(await client_alone(streams, base_url=base_url, gather=args.gather), 4))
            runs.sort(key=lambda r: float(r["cpu_s_per_1k_tokens"]))
            median = runs[len(runs) // 2]
            median["cpu_s_per_1k_tokens_runs"] = [r["cpu_s_per_1k_tokens"] for r in runs]
            median["client_alone_cpu_s_per_1k"] = sorted(alones)[len(alones) // 2]
            median["client_alone_cpu_s_per_1k_runs"] = sorted(alones)
            median["loop"] = args.loop
            results.append(median)
        memory = await run(max(args.streams), fake=fake, base_url=base_url, **timing, measure_memory=True)
        results[-1]["memory_kib_per_conversation"] = memory["memory_kib_per_conversation"]
    finally:
        fake.terminate()
        fake.wait()
    columns = [
        "streams", "tokens", "chunk_to_edit_ms_p50", "chunk_to_edit_ms_p99", "first_visible_ms_p50",
        "first_visible_ms_p99", "whole_visible_after_last_ms_p50", "whole_visible_after_last_ms_p99",
        "cpu_s_per_1k_tokens", "client_alone_cpu_s_per_1k", "memory_kib_per_conversation", "edits", "wall_s",
    ]  # fmt: skip
    print(" | ".join(columns))
    for row in results:
        print(" | ".join(str(row.get(c)) for c in columns))
    for row in results:
        if len(row["cpu_s_per_1k_tokens_runs"]) > 1:
            print(
                f"{row['streams']} stream(s), CPU s per 1k tokens by run: "
                f"engine {row['cpu_s_per_1k_tokens_runs']}, "
                f"client alone {row['client_alone_cpu_s_per_1k_runs']}"
            )
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "engine_stream.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
