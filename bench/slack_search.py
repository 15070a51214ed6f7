"""What Slack shows while Grok searches, through the real Slack stack: signed mentions into the Bolt
app served by bot.web, the real engine and GrokClient on the Responses API, against the loopback
fakes of Slack and xAI in a child process. Each answer runs a web search, then streams its text.

Two ways Slack shows the search, interleaved answer by answer (the machine's speed drifts):
`stream` (a task card in the answer's native stream: chat.startStream with a task_update chunk)
and `edits` (streams not offered: the thread's status line, assistant.threads.setStatus). For each
answer: from the fake xAI's write of the search's first event to the Slack call that shows it (as
the fake Slack received it), p50 and max per mode; target p50 within 10 ms (one edit of the event).

    python -m bench.slack_search [--answers 8] [--words 120] [--tps 100]

Prints a table and writes bench/results/slack_search.json.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import multiprocessing
import statistics
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from bench.slack_stream import Stack, fakes_info
from bench.timing import add_loop_option, answer_text, print_table, run_on, save, serve_control

RESULTS = Path(__file__).resolve().parent / "results" / "slack_search.json"
WORDS = ("the", "web", "says", "grok", "shipped", "today", "and", "people", "on", "x", "agree")
MODES = ("stream", "edits")
# How long the fake's web search runs. Shorter than the 3 s between two of a thread's statuses:
# the search's status must not wait for that interval (SlackReply's `_activity_due`).
SEARCH_S = 1.0


def serve_fakes(conn: Connection, text: str, tps: float) -> None:
    asyncio.run(_serve_fakes(conn, text, tps))


async def _serve_fakes(conn: Connection, text: str, tps: float) -> None:
    from tests.adapters.slack.conftest import ANA, GENERAL, populate
    from tests.fakes.slack import FakeSlack
    from tests.fakes.xai import FakeXAI, ScriptedCitation, ScriptedResponse, ScriptedTool

    slack, xai = FakeSlack(), FakeXAI()
    await slack.start()
    await xai.start()
    populate(slack)
    xai.default_response = ScriptedResponse(
        text=text + " [[1]](https://example.com/one)",
        tokens_per_second=tps,
        tools=(ScriptedTool("web", "bench", sources=("https://example.com/one",), seconds=SEARCH_S),),
        citations=(ScriptedCitation("https://example.com/one", title="One", marker=True),),
    )
    xai.tool_log = {}
    state: dict[str, Any] = {"app": ""}

    async def set_app(request: web.Request) -> web.Response:
        state["app"] = (await request.json())["url"]
        slack.echo_url = state["app"]
        return web.json_response({})

    async def mention(request: web.Request) -> web.Response:
        xai.tool_log = {}
        slack.calls.clear()
        message, _ = await slack.sender(state["app"]).mention(GENERAL, ANA, "what shipped?")
        return web.json_response({"channel": message.channel, "ts": message.ts})

    async def dump(request: web.Request) -> web.Response:
        thread = await request.json()
        tools = [at for times in xai.tool_log.values() for at in times]
        cards = [
            c.at
            for c in slack.calls
            if c.method in ("chat.startStream", "chat.appendStream")
            and any(
                isinstance(k, dict) and k.get("type") == "task_update" for k in c.args.get("chunks") or []
            )
        ]
        statuses = [
            c.at
            for c in slack.calls
            if c.method == "assistant.threads.setStatus" and "🔎" in str(c.args.get("status", ""))
        ]
        messages = slack.bot_messages(thread["channel"], thread_ts=thread["ts"])
        return web.json_response(
            {
                "tool_at": min(tools) if tools else None,
                "card_at": min(cards) if cards else None,
                "status_at": min(statuses) if statuses else None,
                "text": "".join(m.content for m in messages),
                "rate_limited": slack.rate_limited,
            }
        )

    await serve_control(
        conn,
        {"/app": set_app, "/mention": mention, "/dump": dump},
        fakes_info(slack, xai),
        slack,
        xai,
    )


async def run(args: argparse.Namespace) -> dict[str, Any]:
    text = answer_text(args.words, WORDS)
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    fakes = context.Process(target=serve_fakes, args=(child, text, args.tps), daemon=True)
    fakes.start()
    info = parent.recv()
    stack = await Stack.start(info, xai_api="responses")
    server, adapter = stack.server, stack.adapter
    streams = adapter.platform.streams
    delays: dict[str, list[float]] = {mode: [] for mode in MODES}
    complete = {mode: 0 for mode in MODES}
    async with aiohttp.ClientSession() as control:

        async def call(path: str, body: Any) -> Any:
            async with control.post(info["control"] + path, json=body) as response:
                return await response.json()

        await call("/app", {"url": f"{server.url}/slack/events"})
        for n in range(args.answers + 1):  # the first answer of each mode warms up
            for mode in MODES:
                # The bench's switch: Slack offers streams (task cards) or not (the status line).
                streams._offered = mode == "stream"
                thread = await call("/mention", {})
                await adapter.idle()
                dumped = await call("/dump", thread)
                shown = dumped["card_at"] if mode == "stream" else dumped["status_at"]
                if n == 0:
                    continue
                if dumped["tool_at"] is not None and shown is not None:
                    delays[mode].append((shown - dumped["tool_at"]) * 1000)
                complete[mode] += dumped["text"].startswith(text)
        rate_limited = (await call("/dump", {"channel": "", "ts": ""}))["rate_limited"]
    await stack.stop()
    parent.send("stop")
    fakes.join(10)
    return {
        mode: {
            "answers": args.answers,
            "shown": len(delays[mode]),
            "complete": complete[mode],
            "shown_after_tool_event_ms_p50": round(statistics.median(delays[mode]), 2)
            if delays[mode]
            else None,
            "shown_after_tool_event_ms_max": round(max(delays[mode]), 2) if delays[mode] else None,
            "delays_ms": [round(d, 2) for d in delays[mode]],
        }
        for mode in MODES
    } | {"rate_limited_429": rate_limited, "settings": {"words": args.words, "tokens_per_second": args.tps}}


def report(results: dict[str, Any]) -> None:
    rows = []
    for mode, what in (("stream", "task card (native stream)"), ("edits", "status line (no stream)")):
        r = results[mode]
        rows.append(
            (
                f"{what}: after the tool event, p50 / max",
                f"{r['shown_after_tool_event_ms_p50']} / {r['shown_after_tool_event_ms_max']} ms",
                "p50 ≤ 10 ms",
            )
        )
        rows.append(
            (f"  {mode}: answers shown / complete", f"{r['shown']} / {r['complete']} of {r['answers']}", "")
        )
    stream, edits = results["stream"], results["edits"]
    if stream["shown_after_tool_event_ms_p50"] and edits["shown_after_tool_event_ms_p50"]:
        ratio = stream["shown_after_tool_event_ms_p50"] / edits["shown_after_tool_event_ms_p50"]
        rows.append(("task card p50 / status line p50", f"{ratio:.2f}", ""))
    rows.append(("429s from Slack", str(results["rate_limited_429"]), "0"))
    print_table(rows)


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--answers", type=int, default=8, help="answers measured per mode")
    parser.add_argument("--words", type=int, default=120)
    parser.add_argument("--tps", type=float, default=100.0, help="upstream tokens per second")
    add_loop_option(parser)
    args = parser.parse_args(argv)
    results = {"loop": args.loop, **run_on(args.loop, run(args))}
    report(results)
    save(results, RESULTS)


if __name__ == "__main__":
    main()
