"""Ten answers at once in ONE Discord channel, measured from outside: the bot runs as its own process
(`python -m bot run`, or `--peer-command` for another bot) against the loopback fakes of Discord and
xAI with their default limits, and each answer's first and final lag is read from the fake's
version timeline (bench/bursts.py says how).

    python -m bench.discord_burst [--answers 10] [--runs 2] [--words 300] [--tps 100] \\
        [--peer-command "..." --peer-cwd DIR --peer-name llmcord]

The bot is configured only through the contract's variables (DISCORD_TOKEN, DISCORD_API_BASE_URL,
DISCORD_GATEWAY_URL, DISCORD_GUILD_IDS, XAI_API_KEY, XAI_BASE_URL, GROKBOT_MODEL, DATABASE_URL,
PORT), plus GROKBOT_XAI_API=chat (the fake logs Chat Completions streams, the API peers speak).
An answer may be in a message's content or in its first embed's description. Runs of grokbot and
the peer alternate, each with fresh fakes and a fresh process, after one warm-up answer in another
channel. Prints one row per run, the medians and ratios, and writes bench/results/discord_burst.json.

What the limits allow: the fake keeps, per channel, 5 message sends per 5 s and, apart, 5 edits per
5 s (fixed windows opened by the first request; platforms.md D3 reports about 1 edit/s per channel).
300 words are 1,609 characters: one message, streamed as 403 chunks at 100 a second, all ten streams
ending within a few ms of each other, at E ≈ 4 s. The best schedule posts five answers' first words
at once (t=0, the send window of 0-5 s), finishes those five by edits at E (a fresh edit window) and
posts the other five whole when the send window reopens at 5 s: final lags 0 and 5 - E, so with
E = 4 s p50 0.5 s and p99 1 s (and about 0 once E passes 5 s: the fake's pacing is slower under
load). Were sends and edits one 5-per-5 s bucket (the issue's reading), the best is five whole
posts at E and five at E + 5: p50 2.5 s, p99 5 s. Both floors are computed from each run's real
stream times (`floor` in bench/floors.py). platforms.md reports about 5 sends a second per channel,
so the fake's send limit is the stricter of the two readings.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import tempfile
import time
from collections import Counter
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import httpx
from aiohttp import web

from bench.bursts import (
    Bot,
    add_bot_options,
    answer_lags,
    bots,
    free_port,
    interleaved,
    keyed_xai,
    progress,
    question_key,
    report,
    seconds,
    settle,
    spawn_fakes,
    start_bot,
    stop_bot,
    summarize,
)
from bench.discord_process import discord_env, shown_discord
from bench.floors import FixedWindow, Gates, floor
from bench.timing import answer_text, save, serve_control

RESULTS = Path(__file__).resolve().parent / "results" / "discord_burst.json"
SENTENCE = "the quick brown fox jumps over a lazy dog while grok streams every token into discord"
WORDS = SENTENCE.split(" ")


# -- the fakes, in a child process --------------------------------------------------------------


def serve_fakes(conn: Connection, text: str, tps: float, users: int) -> None:
    asyncio.run(_serve_fakes(conn, text, tps, users))


def answers_in(fake: Any, channel: str) -> dict[str, list[list[tuple[float, str]]]]:
    """The bot's messages in `channel` by the question they answer (a continuation replies to the
    answer's previous message), each as its (time, shown content) versions."""
    found: dict[str, list[list[tuple[float, str]]]] = {}
    for message in fake.bot_messages(channel):
        root = message.get("message_reference", {}).get("message_id", "")
        while root in fake.messages and fake.messages[root]["author"]["id"] == fake.bot_user_id:
            root = fake.messages[root].get("message_reference", {}).get("message_id", "")
        key = question_key(fake.messages[root]["content"]) if root in fake.messages else ""
        versions = list(zip(fake.version_times[message["id"]], fake.versions(message["id"]), strict=True))
        found.setdefault(key, []).append(versions)
    return found


async def _serve_fakes(conn: Connection, text: str, tps: float, count: int) -> None:
    from tests.fakes.discord import FakeDiscord
    from tests.fakes.xai import ScriptedReply

    discord_fake, xai = shown_discord(), keyed_xai()
    await discord_fake.start()
    await xai.start()
    guild = discord_fake.add_guild("bench")
    channels = [discord_fake.add_channel(guild, name) for name in ("warm-up", "burst")]
    users = [discord_fake.add_user(f"user{i}", guild_id=guild) for i in range(count)]
    # Chunks of ~4 characters: about one token each, as xAI streams them.
    xai.default_reply = ScriptedReply(text=text, tokens_per_second=tps, chunk_chars=4)
    xai.send_log = {}

    async def mentions(request: web.Request) -> web.Response:
        body = await request.json()
        channel, first = channels[int(body["channel"])], int(body["first"])
        for i in range(int(body["count"])):
            await discord_fake.user_message(
                channel, users[i % len(users)], f"question {first + i}", mention_bot=True
            )
        return web.json_response({"asked_at": time.perf_counter()})

    async def progress_(request: web.Request) -> web.Response:
        body = await request.json()
        answers = answers_in(discord_fake, channels[int(body["channel"])])
        identified = any(s.ws is not None for s in discord_fake.sessions.values())
        return web.json_response({**progress(answers, body["keys"], text), "identified": identified})

    async def state(request: web.Request) -> web.Response:
        channel = channels[int((await request.json())["channel"])]
        asked = {
            question_key(m["content"]): discord_fake.version_times[m["id"]][0]
            for m in discord_fake.channel_messages(channel)
            if m["author"]["id"] != discord_fake.bot_user_id
        }
        return web.json_response(
            {
                "answers": answers_in(discord_fake, channel),
                "asked": asked,
                "sends": xai.send_log,
                "rate_limited": Counter(r.route for r in discord_fake.rate_limited),
                "requests": Counter(r.route for r in discord_fake.requests if r.status < 300),
            }
        )

    defaults = inspect.signature(FakeDiscord.__init__).parameters
    await serve_control(
        conn,
        {"/mentions": mentions, "/progress": progress_, "/state": state},
        {
            "env": {**discord_env(discord_fake, xai, guild), "GROKBOT_XAI_API": "chat"},
            "limits": {k: defaults[f"channel_{k}_limit"].default for k in ("send", "edit")},
        },
        discord_fake,
        xai,
    )


# -- the harness --------------------------------------------------------------------------------


async def drive(process: Any, control_url: str, args: argparse.Namespace) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=control_url, timeout=30) as control:
        deadline = time.monotonic() + 60
        while not (await control.post("/progress", json={"channel": 0, "keys": []})).json()["identified"]:
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("the bot never connected to the gateway")
            await asyncio.sleep(0.2)
        await asyncio.sleep(2.0)  # READY, GUILD_CREATE, command sync
        await control.post("/mentions", json={"channel": 0, "first": 0, "count": 1})
        await settle(control, {"channel": 0, "keys": ["q0"]}, count=1, quiet=15, within=60)
        await asyncio.sleep(2.0)  # the warm-up's writes and the global window pass
        keys = [f"q{i}" for i in range(1, args.answers + 1)]
        await control.post("/mentions", json={"channel": 1, "first": 1, "count": args.answers})
        await settle(control, {"channel": 1, "keys": keys}, count=len(keys), quiet=15, within=args.timeout)
        await asyncio.sleep(1.0)  # late requests and 429s count too
        return dict((await control.post("/state", json={"channel": 1})).json(), keys=keys)


def limits_floor(answers: list[dict[str, Any]], limits: dict[str, Any]) -> dict[str, Any]:
    """The best final lags under the fake's limits (sends and edits apart), and under one shared
    bucket of the send limit (the issue's reading of Discord's "5 requests per 5 s per channel")."""
    streamed = [a for a in answers if a["end"] == a["end"]]  # not NaN: the bot asked xAI
    starts, ends = [a["start"] for a in streamed], [a["end"] for a in streamed]

    def gates(shared: bool) -> Gates:
        def fresh() -> Any:
            sends = FixedWindow(*limits["send"])
            edits = sends if shared else FixedWindow(*limits["edit"])
            return (lambda i: sends), (lambda i: edits)

        return fresh

    return {
        "fake_limits": floor(starts, ends, gates(False)),
        "one_bucket": floor(starts, ends, gates(True)),
        "limits": limits,
    }


def run_once(bot: Bot, run: int, args: argparse.Namespace) -> dict[str, Any]:
    text = answer_text(args.words, WORDS)
    fakes, parent, info = spawn_fakes(serve_fakes, text, args.tps, args.answers)
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "bot.log"
        env = {**info["env"], "DATABASE_URL": f"sqlite+aiosqlite:///{tmp}/bench.db", "PORT": str(free_port())}
        process = start_bot(bot, env, log)
        try:
            state = asyncio.run(drive(process, info["control"], args))
        except SystemExit as exc:
            raise SystemExit(f"{bot.name}: {exc}\n{log.read_text()[-3000:]}") from None
        finally:
            stop_bot(process)
            parent.send("stop")
            fakes.join(10)
    answers = [
        answer_lags(state["answers"].get(k, []), text, state["sends"].get(k, []), state["asked"].get(k))
        for k in state["keys"]
    ]
    done = [a["done_at"] for a in answers if a["done_at"] is not None]
    return {
        "bot": bot.name,
        "run": run,
        "command": bot.command,
        **summarize(answers),
        "wall_s": max(done) - min(state["asked"].values()) if done else None,
        "rate_limited_429": state["rate_limited"],
        "requests": state["requests"],
        "floor": limits_floor(answers, info["limits"]),
        "per_answer": [{k: v for k, v in a.items() if k != "writes"} for a in answers],
    }


COLUMNS = [
    ("reply p50", lambda r: seconds(r["reply_lag_s_p50"])),
    ("first p50", lambda r: seconds(r["first_lag_s_p50"])),
    ("first p99", lambda r: seconds(r["first_lag_s_p99"])),
    ("final p50", lambda r: seconds(r["final_lag_s_p50"])),
    ("final p99", lambda r: seconds(r["final_lag_s_p99"])),
    ("whole", lambda r: f"{r['complete']}/{r['answers']}"),
    ("429s", lambda r: str(sum(r["rate_limited_429"].values()))),
    ("wall s", lambda r: seconds(r["wall_s"])),
    ("floor p50", lambda r: seconds(r["floor"]["fake_limits"]["final_lag_s_p50"])),
    ("floor p99", lambda r: seconds(r["floor"]["fake_limits"]["final_lag_s_p99"])),
    ("1-bkt p50", lambda r: seconds(r["floor"]["one_bucket"]["final_lag_s_p50"])),
    ("1-bkt p99", lambda r: seconds(r["floor"]["one_bucket"]["final_lag_s_p99"])),
]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--answers", type=int, default=10, help="simultaneous answers in one channel")
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds a burst may take")
    add_bot_options(parser)
    args = parser.parse_args(argv)
    runs = []
    for run, bot in interleaved(bots(args), args.runs):
        runs.append(run_once(bot, run, args))
        result = runs[-1]
        print(f"run {run} {bot.name}: final p50 {seconds(result['final_lag_s_p50'])} s", flush=True)
    print()
    report(runs, COLUMNS)
    for result in runs:
        where = {k: result[k] for k in ("writes", "writes_ahead_of_a_final_mean", "ended_before_first_post")}
        print(f"run {result['run']} {result['bot']}: 429s {result['rate_limited_429']}; {where}")
    save({"settings": vars(args), "runs": runs}, RESULTS)


if __name__ == "__main__":
    main()
