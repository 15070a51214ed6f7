"""Streamed answers through the real Discord stack: mentions arrive over the gateway websocket into
discord.py and DiscordAdapter, the real engine and GrokClient answer, edits go out through discord.py's
rate-limited HTTP client, against the loopback fakes of Discord and xAI in a child process (so the
CPU measured is the bot's alone).

    python -m bench.discord_stream [--answers 5] [--burst 10] [--words 300] [--tps 100]

Prints a table and writes bench/results/discord_stream.json. Targets: first words visible within
10 ms of the first upstream token (p50); the whole answer within 20 ms of the last; no 429 for 10
simultaneous answers in one channel; at most 0.09 CPU s per 1,000 streamed tokens.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import multiprocessing
import statistics
import tempfile
import time
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

RESULTS = Path(__file__).resolve().parent / "results" / "discord_stream.json"
SENTENCE = "the quick brown fox jumps over a lazy dog while grok streams every token into discord"
WORDS = SENTENCE.split(" ")


# -- the fakes, in a child process --------------------------------------------------------------


def serve_fakes(conn: Connection, text: str, tps: float) -> None:
    asyncio.run(_serve_fakes(conn, text, tps))


async def _serve_fakes(conn: Connection, text: str, tps: float) -> None:
    from tests.fakes.discord import FakeDiscord
    from tests.fakes.xai import FakeXAI, ScriptedReply

    discord_fake, xai = FakeDiscord(), FakeXAI()
    await discord_fake.start()
    await xai.start()
    guild = discord_fake.add_guild("bench")
    channels = [discord_fake.add_channel(guild, f"bench-{i}") for i in range(12)]
    users = [discord_fake.add_user(f"user{i}", guild_id=guild) for i in range(12)]
    # Chunks of ~4 characters: about one token each, as xAI streams them.
    xai.default_reply = ScriptedReply(text=text, tokens_per_second=tps, chunk_chars=4)
    xai.send_log = {}

    async def mentions(request: web.Request) -> web.Response:
        body = await request.json()
        channel = channels[int(body["channel"])]
        sent = [
            await discord_fake.user_message(channel, users[i % len(users)], f"question {i}", mention_bot=True)
            for i in range(int(body["count"]))
        ]
        return web.json_response({"channel": channel, "questions": [m["id"] for m in sent]})

    async def dump(request: web.Request) -> web.Response:
        channel = (await request.json())["channel"]
        answers: dict[str, list[dict[str, Any]]] = {}
        for message in discord_fake.bot_messages(channel):
            reference = message.get("message_reference", {}).get("message_id", "")
            root = reference
            while root in discord_fake.messages and discord_fake.messages[root]["author"]["bot"]:
                root = discord_fake.messages[root].get("message_reference", {}).get("message_id", "")
            answers.setdefault(root, []).append(
                {
                    "versions": discord_fake.versions(message["id"]),
                    "times": discord_fake.version_times[message["id"]],
                }
            )
        routes: dict[str, int] = {}
        for r in discord_fake.requests:
            routes[r.route] = routes.get(r.route, 0) + 1
        return web.json_response(
            {
                "answers": answers,
                "rate_limited": len(discord_fake.rate_limited),
                "routes": routes,
                "sends": xai.send_log,
            }
        )

    await serve_control(
        conn,
        {"/mentions": mentions, "/dump": dump},
        {
            "token": discord_fake.token,
            "rest_url": discord_fake.rest_url,
            "gateway_url": discord_fake.gateway_url,
            "guild": guild,
            "xai_base_url": xai.base_url,
            "xai_api_key": xai.api_key,
        },
        discord_fake,
        xai,
    )


# -- the bot, in this process -------------------------------------------------------------------


def measure(messages: list[dict[str, Any]], first: float, last: float, text: str) -> dict[str, Any]:
    """One answer's visible timeline (its messages, in order) against the upstream token times."""
    shown_at = min(t for m in messages for v, t in zip(m["versions"], m["times"], strict=True) if v)
    done_at = max(m["times"][-1] for m in messages)
    final = "\n\n".join(m["versions"][-1] for m in messages)
    return {
        "first_visible_ms": (shown_at - first) * 1000,
        "complete_ms": (done_at - last) * 1000,
        "edits": sum(len(m["versions"]) for m in messages),
        "messages": len(messages),
        "complete": final == text,
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from adapters.discord import DiscordAdapter
    from bench.timing import TimedGrok
    from bot.db import create_engine, session_factory, upgrade_async
    from bot.engine import Engine, utc_now
    from bot.grok import ChatMessage, ChatRequest, ContentDelta, GrokClient
    from bot.quotas import Quotas
    from bot.services import http_client
    from bot.settings import Settings

    text = answer_text(args.words, WORDS)
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    fakes = context.Process(target=serve_fakes, args=(child, text, args.tps), daemon=True)
    fakes.start()
    info = parent.recv()
    tmp = tempfile.TemporaryDirectory()
    url = f"sqlite+aiosqlite:///{tmp.name}/bench.db"
    await upgrade_async(url)
    settings = Settings(
        _env_file=None,
        xai_api_key=info["xai_api_key"],
        xai_base_url=info["xai_base_url"],
        discord_token=info["token"],
        discord_api_base_url=info["rest_url"],
        discord_gateway_url=info["gateway_url"],
        discord_guild_ids=info["guild"],
        database_url=url,
        grokbot_user_daily_usd="0",
        grokbot_user_monthly_usd="0",
        grokbot_xai_api="chat",  # the streams TimedGrok times (bench/search_stream.py: the Responses API)
    )
    db = create_engine(url)
    sessions = session_factory(db)
    http = http_client()
    grok = TimedGrok(http, api_key=info["xai_api_key"], base_url=info["xai_base_url"])
    engine = Engine(settings, grok=grok, sessions=sessions, quotas=Quotas(sessions, settings, clock=utc_now))
    adapter = DiscordAdapter(settings, engine, guild_ready_timeout=0.05)
    await adapter.start()

    async def answered(count: int) -> None:
        """Until `count` answers have streamed and every handler is done (recorded)."""
        # Seldom: every look is a wake-up of this process, which the CPU figures would count.
        while len(TimedGrok.marks) < count or adapter.in_flight:  # noqa: ASYNC110 - no event to await
            await asyncio.sleep(0.25)

    async with aiohttp.ClientSession() as control:

        async def call(path: str, body: Any) -> Any:
            async with control.post(info["control"] + path, json=body) as response:
                return await response.json()

        await call("/mentions", {"channel": 0, "count": 1})  # warm-up: imports, connections, caches
        await answered(1)
        TimedGrok.marks.clear()
        await asyncio.sleep(5.0)  # let the warm-up's rate-limit windows pass

        singles: list[dict[str, Any]] = []
        for n in range(args.answers):
            cpu = time.process_time()
            sent = await call("/mentions", {"channel": 1 + n, "count": 1})
            await answered(n + 1)
            cpu = time.process_time() - cpu
            _, _, tokens = TimedGrok.marks[-1]
            dumped = await call("/dump", {"channel": sent["channel"]})
            first, last = sent_span(dumped["sends"])
            [messages] = dumped["answers"].values()
            singles.append({**measure(messages, first, last, text), "tokens": tokens, "cpu_s": cpu})

        before = (await call("/dump", {"channel": 0}))["rate_limited"]
        TimedGrok.marks.clear()
        started = time.perf_counter()
        cpu = time.process_time()
        sent = await call("/mentions", {"channel": 11, "count": args.burst})
        await answered(args.burst)
        burst_s = time.perf_counter() - started
        burst_cpu = time.process_time() - cpu
        dumped = await call("/dump", {"channel": sent["channel"]})
        burst_complete = sum(
            1
            for messages in dumped["answers"].values()
            if "\n\n".join(m["versions"][-1] for m in messages) == text
        )
        burst_tokens = sum(tokens for _, _, tokens in TimedGrok.marks)

        # The same answers read by the xAI client alone (no engine, no Discord): the floor under the
        # per-token CPU above, so that the Discord adapter's own share can be told apart.
        alone = GrokClient(http, api_key=info["xai_api_key"], base_url=info["xai_base_url"])
        request = ChatRequest(model="grok-4.3", messages=(ChatMessage("user", "question"),))
        cpu = time.process_time()
        alone_tokens = 0
        for _ in range(args.answers):
            async for event in alone.stream(request):
                alone_tokens += isinstance(event, ContentDelta)
        alone_cpu = time.process_time() - cpu

    await adapter.stop()
    await http.aclose()
    await db.dispose()
    parent.send("stop")
    fakes.join(10)
    tmp.cleanup()
    return {
        "answers": singles,
        "first_visible_ms_p50": statistics.median(s["first_visible_ms"] for s in singles),
        "complete_ms_p50": statistics.median(s["complete_ms"] for s in singles),
        "edits_per_answer": statistics.mean(s["edits"] for s in singles),
        "cpu_s_per_answer": statistics.mean(s["cpu_s"] for s in singles),
        "cpu_s_per_1000_tokens": 1000 * sum(s["cpu_s"] for s in singles) / sum(s["tokens"] for s in singles),
        "tokens_per_answer": statistics.mean(s["tokens"] for s in singles),
        "all_complete": all(s["complete"] for s in singles),
        "xai_client_alone_cpu_s_per_1000_tokens": 1000 * alone_cpu / max(1, alone_tokens),
        "burst": {
            "answers": args.burst,
            "rate_limited_429": dumped["rate_limited"] - before,
            "complete": burst_complete,
            "seconds": burst_s,
            "cpu_s": burst_cpu,
            "cpu_s_per_1000_tokens": 1000 * burst_cpu / max(1, burst_tokens),
            "discord_requests": dumped["routes"],
        },
        "settings": {"words": args.words, "tokens_per_second": args.tps, "chars": len(text)},
    }


def report(results: dict[str, Any]) -> None:
    burst = results["burst"]
    rows = [
        *answer_rows(results, cpu_target="≤ 0.09 s"),
        (
            "  of which the xAI client alone (same stream, no engine/Discord)",
            f"{results['xai_client_alone_cpu_s_per_1000_tokens']:.3f} s",
            "",
        ),
        (
            f"429s with {burst['answers']} simultaneous answers in one channel",
            str(burst["rate_limited_429"]),
            "0",
        ),
        ("burst: answers complete / wall time", f"{burst['complete']} / {burst['seconds']:.1f} s", ""),
        ("burst: CPU per 1,000 streamed tokens", f"{burst['cpu_s_per_1000_tokens']:.3f} s", ""),
    ]
    print_table(rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--answers", type=int, default=5, help="sequential answers measured (each in its channel)"
    )
    parser.add_argument("--burst", type=int, default=10, help="simultaneous answers in one channel")
    add_loop_option(parser)
    parser.add_argument("--words", type=int, default=300)
    parser.add_argument("--tps", type=float, default=100.0, help="upstream tokens per second")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    results = {"loop": args.loop, **run_on(args.loop, run(args))}
    report(results)
    save(results, RESULTS)


if __name__ == "__main__":
    main()
