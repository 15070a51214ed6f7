"""Streamed answers through the real Slack stack: signed events into the Bolt app served by bot.web,
the real engine and GrokClient, against the loopback fakes of Slack and xAI running in a child
process (so the CPU measured is the bot's alone).

    python -m bench.slack_stream [--answers 5] [--burst 20] [--words 300] [--tps 100]

Prints a table and writes bench/results/slack_stream.json. Targets: first words visible within
10 ms of the first upstream token (p50); the whole answer within 20 ms of the last; no 429 for a
burst of simultaneous answers in one workspace; at most 0.12 CPU s per 1,000 streamed tokens.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import logging
import multiprocessing
import pstats
import statistics
import tempfile
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from bench.timing import (
    add_loop_option,
    answer_rows,
    answer_text,
    print_table,
    run_on,
    save,
    sent_span,
    serve_control,
)

RESULTS = Path(__file__).resolve().parent / "results" / "slack_stream.json"
WORDS = ("the", "quick", "brown", "fox", "jumps", "over", "a", "lazy", "dog", "while", "grok")  # fmt: skip


# -- the fakes, in a child process --------------------------------------------------------------


def serve_fakes(conn: Connection, text: str, tps: float) -> None:
    asyncio.run(_serve_fakes(conn, text, tps))


async def _serve_fakes(conn: Connection, text: str, tps: float) -> None:
    from tests.adapters.slack.conftest import populate
    from tests.fakes.slack import FakeSlack
    from tests.fakes.xai import FakeXAI, ScriptedReply

    slack, xai = FakeSlack(), FakeXAI()
    await slack.start()
    await xai.start()
    populate(slack)
    channels = [f"C0BENCH{i:02d}" for i in range(5)]
    users = [f"U0BENCH{i:02d}" for i in range(20)]
    for channel in channels:
        slack.add_channel(channel)
    for user in users:
        slack.add_user(user, user.lower())
    xai.default_reply = ScriptedReply(text=text, tokens_per_second=tps)
    xai.send_log = {}
    state: dict[str, Any] = {"app": ""}

    async def set_app(request: web.Request) -> web.Response:
        state["app"] = (await request.json())["url"]
        slack.echo_url = state["app"]
        return web.json_response({})

    async def mentions(request: web.Request) -> web.Response:
        count = int((await request.json())["count"])
        sender = slack.sender(state["app"])
        sent = await asyncio.gather(
            *(sender.mention(channels[i % len(channels)], users[i], f"question {i}") for i in range(count))
        )
        return web.json_response([{"channel": m.channel, "ts": m.ts} for m, _ in sent])

    async def dump(request: web.Request) -> web.Response:
        threads = await request.json()
        out = []
        for thread in threads:
            messages = slack.bot_messages(thread["channel"], thread_ts=thread["ts"])
            out.append(
                [
                    {"versions": m.versions, "streaming": m.streaming, "blocks": len(m.blocks)}
                    for m in messages
                ]
            )
        calls: dict[str, int] = {}
        for call in slack.calls:
            calls[call.method] = calls.get(call.method, 0) + 1
        return web.json_response(
            {"threads": out, "rate_limited": slack.rate_limited, "calls": calls, "sends": xai.send_log}
        )

    await serve_control(
        conn,
        {"/app": set_app, "/mentions": mentions, "/dump": dump},
        fakes_info(slack, xai),
        slack,
        xai,
    )


def fakes_info(slack: Any, xai: Any) -> dict[str, str]:
    """What the bot's process needs to reach the fake Slack and the fake xAI."""
    return {
        "slack_api_url": slack.api_url,
        "bot_token": slack.bot_token,
        "signing_secret": slack.signing_secret,
        "xai_base_url": xai.base_url,
        "xai_api_key": xai.api_key,
    }


@dataclass
class Stack:
    """grokbot's Slack stack in this process, against the fakes of another."""

    info: dict[str, Any]
    settings: Any
    db: Any
    http: Any
    grok: Any
    server: Any
    adapter: Any
    tmp: tempfile.TemporaryDirectory[str]

    @classmethod
    async def start(cls, info: dict[str, Any], *, xai_api: str, grok_class: Any = None) -> Stack:
        from adapters.slack import SlackAdapter
        from bot.db import create_engine, session_factory, upgrade_async
        from bot.engine import Engine, utc_now
        from bot.grok import GrokClient
        from bot.quotas import Quotas
        from bot.services import http_client
        from bot.settings import Settings
        from bot.web import WebServer

        tmp = tempfile.TemporaryDirectory()
        url = f"sqlite+aiosqlite:///{tmp.name}/bench.db"
        await upgrade_async(url)
        settings = Settings(  # type: ignore[call-arg]
            _env_file=None,
            xai_api_key=info["xai_api_key"],
            xai_base_url=info["xai_base_url"],
            slack_bot_token=info["bot_token"],
            slack_signing_secret=info["signing_secret"],
            slack_api_url=info["slack_api_url"],
            database_url=url,
            grokbot_user_daily_usd="0",
            grokbot_user_monthly_usd="0",
            grokbot_xai_api=xai_api,
        )
        db = create_engine(url)
        sessions = session_factory(db)
        http = http_client()  # the service's own: bot/grok/net.py's transport
        grok = (grok_class or GrokClient)(http, api_key=info["xai_api_key"], base_url=info["xai_base_url"])
        quotas = Quotas(sessions, settings, clock=utc_now)
        engine = Engine(settings, grok=grok, sessions=sessions, quotas=quotas)
        server = WebServer(port=0, host="127.0.0.1")
        adapter = SlackAdapter(settings, engine, web=server)
        await adapter.start()
        await server.start()
        return cls(info, settings, db, http, grok, server, adapter, tmp)

    async def stop(self) -> None:
        await self.server.stop()
        await self.adapter.stop()
        await self.http.aclose()
        await self.db.dispose()
        self.tmp.cleanup()


# -- the bot, in this process -------------------------------------------------------------------


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from bench.timing import TimedGrok
    from bot.grok import ChatMessage, ChatRequest, GrokClient

    text = answer_text(args.words, WORDS)
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    fakes = context.Process(target=serve_fakes, args=(child, text, args.tps), daemon=True)
    fakes.start()
    info = parent.recv()
    # Chat Completions: the streams TimedGrok times (bench/search_stream.py: the Responses API).
    stack = await Stack.start(info, xai_api="chat", grok_class=TimedGrok)
    settings, grok, server, adapter = stack.settings, stack.grok, stack.server, stack.adapter
    results: dict[str, Any] = {}
    async with aiohttp.ClientSession() as control:

        async def call(path: str, body: Any) -> Any:
            async with control.post(info["control"] + path, json=body) as response:
                return await response.json()

        # Baseline: the same answer read straight from the xAI fake, no engine and no Slack: what
        # the upstream stream alone costs this process (one wake-up per token at this pace).
        request = ChatRequest(model=settings.grokbot_model, messages=(ChatMessage("user", "baseline"),))
        baseline: list[float] = []

        async def upstream_only() -> float:
            cpu = time.process_time()
            async for _event in GrokClient.stream(grok, request):
                pass
            return time.process_time() - cpu

        await upstream_only()  # warm-up
        await call("/app", {"url": f"{server.url}/slack/events"})
        await call("/mentions", {"count": 1})  # warm-up: imports, connections, caches
        await adapter.idle()
        TimedGrok.marks.clear()

        singles: list[dict[str, Any]] = []
        profile = cProfile.Profile() if args.profile else None
        if profile is not None:
            profile.enable()
        for _ in range(args.answers):
            cpu = time.process_time()
            [thread] = await call("/mentions", {"count": 1})
            await adapter.idle()
            cpu = time.process_time() - cpu
            _, _, tokens = TimedGrok.marks[-1]
            dumped = await call("/dump", [thread])
            first, last = sent_span(dumped["sends"])
            [messages] = dumped["threads"]
            versions = [v for m in messages for v in m["versions"]]
            final = "".join(m["versions"][-1][1] for m in messages)
            if not any(text for _, text in versions):
                print(f"answer {len(singles) + 1} showed nothing; Slack calls so far: {dumped['calls']}")
                continue
            shown_at = next(at for at, text in versions if text)
            done_at = max(at for at, _ in (m["versions"][-1] for m in messages))
            singles.append(
                {
                    "first_visible_ms": (shown_at - first) * 1000,
                    "complete_ms": (done_at - last) * 1000,
                    "edits": len(versions),
                    "tokens": tokens,
                    "cpu_s": cpu,
                    "complete": final == text,
                }
            )
            baseline.append(await upstream_only())  # interleaved, under the same conditions

        if profile is not None:
            profile.disable()
            pstats.Stats(profile).sort_stats("cumulative").print_stats(90)
        before = (await call("/dump", []))["rate_limited"]
        started = time.perf_counter()
        cpu = time.process_time()
        threads = await call("/mentions", {"count": args.burst})
        await adapter.idle()
        burst_s = time.perf_counter() - started
        burst_cpu = time.process_time() - cpu
        dumped = await call("/dump", threads)
        burst_complete = sum(
            1 for messages in dumped["threads"] if "".join(m["versions"][-1][1] for m in messages) == text
        )
        results = {
            "answers": singles,
            "first_visible_ms_p50": statistics.median(s["first_visible_ms"] for s in singles),
            "complete_ms_p50": statistics.median(s["complete_ms"] for s in singles),
            "edits_per_answer": statistics.mean(s["edits"] for s in singles),
            "cpu_s_per_answer": statistics.mean(s["cpu_s"] for s in singles),
            "cpu_s_per_1000_tokens": 1000
            * sum(s["cpu_s"] for s in singles)
            / sum(s["tokens"] for s in singles),
            "tokens_per_answer": statistics.mean(s["tokens"] for s in singles),
            "upstream_only_cpu_s_per_answer": statistics.mean(baseline),
            "cpu_s_per_1000_tokens_net_of_upstream": 1000
            * (statistics.mean(s["cpu_s"] for s in singles) - statistics.mean(baseline))
            / statistics.mean(s["tokens"] for s in singles),
            "all_complete": all(s["complete"] for s in singles),
            "burst": {
                "answers": args.burst,
                "rate_limited_429": dumped["rate_limited"] - before,
                "complete": burst_complete,
                "seconds": burst_s,
                "cpu_s": burst_cpu,
                "slack_calls": dumped["calls"],
            },
            "settings": {"words": args.words, "tokens_per_second": args.tps},
        }
    await stack.stop()
    parent.send("stop")
    fakes.join(10)
    return results


def report(results: dict[str, Any]) -> None:
    burst = results["burst"]
    rows = [
        *answer_rows(results, cpu_target="≤ 0.12 s"),
        (
            "  of which reading the xAI stream alone, per answer",
            f"{results['upstream_only_cpu_s_per_answer'] * 1000:.0f} ms",
            "",
        ),
        (
            "  the rest (engine, Slack, Bolt, DB) per 1,000 tokens",
            f"{results['cpu_s_per_1000_tokens_net_of_upstream']:.3f} s",
            "",
        ),
        (f"429s in a burst of {burst['answers']} answers", str(burst["rate_limited_429"]), "0"),
        ("burst: answers complete / wall time", f"{burst['complete']} / {burst['seconds']:.1f} s", ""),
    ]
    print_table(rows)


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--answers", type=int, default=5, help="sequential answers measured")
    parser.add_argument("--burst", type=int, default=20, help="simultaneous answers in one workspace")
    parser.add_argument("--words", type=int, default=300)
    parser.add_argument("--tps", type=float, default=100.0, help="upstream tokens per second")
    add_loop_option(parser)
    parser.add_argument("--profile", action="store_true", help="print where the CPU of the answers went")
    args = parser.parse_args(argv)
    results = {"loop": args.loop, **run_on(args.loop, run(args))}
    report(results)
    save(results, RESULTS)


if __name__ == "__main__":
    main()
