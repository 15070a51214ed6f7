"""Search benchmark: answers through the Responses API (a web search, then text with citations,
then the sources) beside the same text through Chat Completions, from the xAI fake (its own
process) into a FakePlatform, runs of each API interleaved.

Reports how soon the status says what is being searched after the fake wrote the tool call's
first event (p50/p99; target p50 ≤ 10 ms), and CPU seconds per 1,000 streamed tokens of each API
(this process: engine, client, platform, database) with their ratio (target: Responses within
10 % of Chat Completions). Writes bench/results/search_stream.json.

    python bench/search_stream.py [--streams 1 20] [--words 300] [--tps 100] [--repeat 5]
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncGenerator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlmodel import select

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.engine_stream import API_KEY, fake_process, free_port, grok_for, http_for, pct, read_log  # noqa: E402
from bench.timing import add_loop_option, run_on, save  # noqa: E402
from bot.db import create_engine, session_factory, upgrade  # noqa: E402
from bot.engine import Engine  # noqa: E402
from bot.grok import ChatRequest, ContentDelta, Gathering, GrokClient, ResponseRequest, StreamEvent  # noqa: E402
from bot.platform import Author, Incoming, Place  # noqa: E402
from bot.quotas import Quotas  # noqa: E402
from bot.settings import Settings  # noqa: E402
from bot.tables import Conversation  # noqa: E402
from tests.fakes.platform import DEFAULT_CAPABILITIES, FakePlatform  # noqa: E402

APIS = ("chat", "responses")
SEARCH_S = 0.2  # how long the fake's web search runs before the answer


def answer_text(words: int) -> str:
    """`words` words with two citation markers in them (plain text to Chat Completions)."""
    body = [f"word{i}" for i in range(words)]
    body[words // 3] += " [[1]](https://example.com/one)"
    body[2 * words // 3] += " [[2]](https://x.com/xai/status/2)"
    return " ".join(body)


def start_fake(port: int, *, words: int, tps: float) -> subprocess.Popen[bytes]:
    """The fake, answering both APIs with the same text at the same pace; Responses after a search."""
    text = answer_text(words)
    setup = f"""
fake.default_reply = ScriptedReply(text={text!r}, chunk_chars=6, tokens_per_second={tps})
fake.default_response = ScriptedResponse(
    text={text!r}, chunk_chars=6, tokens_per_second={tps},
    tools=(ScriptedTool("web", "bench query", sources=("https://example.com/one",), seconds={SEARCH_S}),),
    citations=(ScriptedCitation("https://example.com/one", marker=True, title="One"),
               ScriptedCitation("https://x.com/xai/status/2", marker=True)))
"""
    return fake_process(port, setup, log="tool_log")


def tool_log(fake: subprocess.Popen[bytes]) -> dict[str, list[float]]:
    """When the fake wrote each tool call's start since the last call, by conversation id."""
    log: dict[str, list[float]] = read_log(fake)
    return log


class CountingGrok(GrokClient):
    """Counts the text deltas of both APIs' streams (the streamed tokens)."""

    deltas = 0

    async def _counted(self, events: AsyncGenerator[StreamEvent, None]) -> AsyncGenerator[StreamEvent, None]:
        async for event in events:
            if type(event) is ContentDelta:
                CountingGrok.deltas += 1
            yield event

    def stream(self, request: ChatRequest, *, gathering: Gathering | None = None) -> Any:
        return self._counted(super().stream(request, gathering=gathering))

    def stream_response(self, request: ResponseRequest, *, gathering: Gathering | None = None) -> Any:
        return self._counted(super().stream_response(request, gathering=gathering))


async def run(api: str, streams: int, *, fake: subprocess.Popen[bytes], base_url: str) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp())
    url = f"sqlite+aiosqlite:///{workdir / 'bench.db'}"
    await asyncio.to_thread(upgrade, url)
    db = create_engine(url)
    sessions = session_factory(db)
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, xai_api_key=API_KEY, xai_base_url=base_url, grokbot_edit_interval_s=1.0,
        grokbot_xai_api=api, grokbot_user_daily_usd="0", grokbot_user_monthly_usd="0",
    )  # fmt: skip
    caps = replace(
        DEFAULT_CAPABILITIES, max_message_length=100_000, edit_interval=1.0, scope_edits_per_minute=1e6
    )
    platform = FakePlatform(capabilities=caps)
    async with http_for(streams) as http:
        grok = grok_for(CountingGrok, http, streams, base_url, 0.25)
        engine = Engine(
            settings,
            grok=grok,
            sessions=sessions,
            quotas=Quotas(sessions, settings, clock=lambda: datetime.now(UTC)),
        )
        warm = Incoming(Place("bench", "warm", "c", "t"), Author("warm", "warm"), text="hi", message_id="w")
        await engine.handle(warm, FakePlatform(capabilities=caps))  # connections open, statements compiled
        tool_log(fake)
        CountingGrok.deltas = 0
        incomings = [
            Incoming(
                Place("bench", f"w{n}", "c", f"t{n}"),
                Author(f"u{n}", f"user{n}"),
                text="search",
                message_id=f"m{n}",
            )
            for n in range(streams)
        ]
        cpu0 = time.process_time()
        await asyncio.gather(*(engine.handle(incoming, platform) for incoming in incomings))
        cpu = time.process_time() - cpu0
    async with sessions() as session:
        conv_of = dict((await session.exec(select(Conversation.thread, Conversation.grok_conv_id))).all())
    await db.dispose()
    return {"api": api, "streams": streams, "tokens": CountingGrok.deltas,
            "cpu_s_per_1k_tokens": cpu / max(1, CountingGrok.deltas) * 1000,
            "status_ms": status_delays(platform, tool_log(fake), conv_of)}  # fmt: skip


def status_delays(
    platform: FakePlatform, tools: dict[str, list[float]], conv_of: dict[str, str]
) -> list[float]:
    """For each answer: from the fake's write of the search's start to the searching status."""
    delays = []
    for message in platform.messages:
        written = tools.get(conv_of.get(message.place.thread, ""), [])
        shown = [
            e.at
            for e in platform.events
            if e.message_id == message.id and e.kind == "status" and "🔎" in e.text
        ]
        if written and shown:
            delays.append((shown[0] - written[0]) * 1000)
    return delays


async def measure(args: argparse.Namespace) -> list[dict[str, Any]]:
    port = free_port()
    fake = start_fake(port, words=args.words, tps=args.tps)
    base_url = f"http://127.0.0.1:{port}/v1"
    results = []
    try:
        for streams in args.streams:
            runs: dict[str, list[dict[str, Any]]] = {api: [] for api in APIS}
            for _ in range(args.repeat):  # interleaved: the machine's load drifts over a run
                for api in APIS:
                    runs[api].append(await run(api, streams, fake=fake, base_url=base_url))
            results.append(summary(streams, runs))
    finally:
        fake.terminate()
        fake.wait()
    return results


def summary(streams: int, runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    cpu = {api: sorted(r["cpu_s_per_1k_tokens"] for r in runs[api]) for api in APIS}
    median = {api: values[len(values) // 2] for api, values in cpu.items()}
    delays = [d for r in runs["responses"] for d in r["status_ms"]]
    return {
        "streams": streams,
        "tokens_per_run": runs["chat"][0]["tokens"],
        "status_after_tool_event_ms_p50": round(pct(delays, 0.5), 2),
        "status_after_tool_event_ms_p99": round(pct(delays, 0.99), 2),
        "cpu_s_per_1k_tokens_chat": round(median["chat"], 4),
        "cpu_s_per_1k_tokens_responses": round(median["responses"], 4),
        "responses_over_chat": round(median["responses"] / median["chat"], 3),
        "runs": {api: [round(v, 4) for v in values] for api, values in cpu.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--streams", type=int, nargs="+", default=[1, 20])
    parser.add_argument("--words", type=int, default=300)
    parser.add_argument("--tps", type=float, default=100.0, help="upstream tokens (chunks) per second")
    parser.add_argument("--repeat", type=int, default=5, help="runs of each API (medians reported)")
    add_loop_option(parser)
    args = parser.parse_args()
    results = run_on(args.loop, measure(args))
    for row in results:
        print(
            f"{row['streams']} stream(s): searching status {row['status_after_tool_event_ms_p50']} ms p50, "
            f"{row['status_after_tool_event_ms_p99']} ms p99 after the tool event (target p50 ≤ 10 ms); "
            f"CPU per 1k tokens chat {row['cpu_s_per_1k_tokens_chat']} s, responses "
            f"{row['cpu_s_per_1k_tokens_responses']} s: ratio {row['responses_over_chat']} (target ≤ 1.10); "
            f"runs {row['runs']}"
        )
    save({"runs": results}, ROOT / "bench" / "results" / "search_stream.json")


if __name__ == "__main__":
    main()
