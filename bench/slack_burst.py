"""Answers at once in one Slack workspace, measured from outside: the bot runs as its own process
(or several, on one PostgreSQL database), HTTP mode, behind one fake Slack and one fake xAI with their
default limits; each answer's first and final lag is read from the fake's version timeline
(bench/bursts.py says how), and every 429 the fake served is counted per method.

    python -m bench.slack_burst                      # 20 mentions at once in 20 channels (issue 15, 3)
    python -m bench.slack_burst --instances 2 --answers 40 --channels 10  # two instances (issue 15, 2)
    ... [--runs 2] [--words 300] [--tps 100] [--peer-command "..." --peer-cwd DIR --peer-name NAME]

A bot is configured only through the contract's variables (SLACK_BOT_TOKEN, SLACK_SIGNING_SECRET,
SLACK_API_URL, PORT, XAI_API_KEY, XAI_BASE_URL, GROKBOT_MODEL, DATABASE_URL) plus GROKBOT_XAI_API=chat,
and must take signed Events API requests at http://127.0.0.1:$PORT/slack/events. Events (the
mentions, and the fake's echoes of the bot's own posts and edits, as Slack sends them) go through a
round-robin balancer in the fakes' process, so with two instances they take turns as behind a load
balancer (the mentions alternate, each one's two events to one instance). No warm-up answer: it
would spend the per-minute windows the burst is measured against. With --instances above 1,
grokbot's instances share a scratch database on 127.0.0.1:5432 (user postgres), migrated first and
dropped afterwards. An answer is broken when it never shows whole, or when one of its messages is
only a notice ("⚠️ The answer continues in the next message.").

What the limits allow (the fake's defaults, platforms.md S3): chat.postMessage about 1 per second per
channel with a burst of 4 (no workspace cap), chat.update 50 per minute per workspace (Tier 3, any
60 s window: a burst may spend all 50 at once), chat.startStream and chat.stopStream 20 (Tier 2),
chat.appendStream 100 (Tier 4). 20 answers in 20 channels: 20 first posts, one per channel, at
once; 20 finals are 20 chat.update calls, within the 50 of one window: every answer can be whole as
its stream ends, final lag ~0. 40 answers in 10 channels: 4 first posts per channel fit its burst,
and 40 finals fit the 50. `floor` in bench/floors.py computes this from each run's stream times.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import tempfile
import time
from collections import Counter
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import aiohttp
import httpx
from aiohttp import web

from bench import bursts
from bench.bursts import Bot
from bench.floors import Gates, SlidingWindow, TokenBucket, floor
from bench.timing import answer_text, save, serve_control

RESULTS = Path(__file__).resolve().parent / "results"
WORDS = ("the", "quick", "brown", "fox", "jumps", "over", "a", "lazy", "dog", "while", "grok")  # fmt: skip
FORWARDED = ("content-type", "x-slack-request-timestamp", "x-slack-signature", "x-slack-retry-num")


# -- the fakes, in a child process --------------------------------------------------------------


def serve_fakes(conn: Connection, text: str, tps: float, channels: int) -> None:
    asyncio.run(_serve_fakes(conn, text, tps, channels))


def answers_in(slack: Any, questions: dict[str, tuple[str, str, float]]) -> dict[str, Any]:
    """Each question's answer: the bot's messages in its thread, each as its (time, content) versions."""
    return {
        key: [m.versions for m in slack.bot_messages(channel, thread_ts=ts)]
        for key, (channel, ts, _) in questions.items()
    }


class Balancer:
    """Signed event deliveries to the bot's instances in turn, as a load balancer would; `?to=i`
    sends one to instance i (a mention's app_mention and message events arrive together, so taking
    turns per delivery would give every app_mention to the same instance)."""

    def __init__(self) -> None:
        self.apps: list[str] = []
        self.turn = itertools.count()
        self.session: aiohttp.ClientSession | None = None

    async def forward(self, request: web.Request) -> web.Response:
        if self.session is None:
            self.session = aiohttp.ClientSession()
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() in FORWARDED}
        to = int(request.query["to"]) if "to" in request.query else next(self.turn)
        url = self.apps[to % len(self.apps)]
        async with self.session.post(url, data=body, headers=headers) as response:
            kind = response.headers.get("Content-Type", "text/plain")
            return web.Response(
                status=response.status, body=await response.read(), headers={"Content-Type": kind}
            )


async def _serve_fakes(conn: Connection, text: str, tps: float, count: int) -> None:
    from tests.fakes import slack as fake
    from tests.fakes.slack import values
    from tests.fakes.xai import ScriptedReply

    slack, xai = fake.FakeSlack(), bursts.keyed_xai()
    await slack.start()
    await xai.start()
    channels = [slack.add_channel(f"C0BURST{i:02d}", f"burst-{i}").id for i in range(count)]
    users = [slack.add_user(f"U0ASK{i:03d}", f"asker{i}").id for i in range(100)]
    xai.default_reply = ScriptedReply(text=text, tokens_per_second=tps, chunk_chars=4)
    xai.send_log = {}
    balancer = Balancer()
    questions: dict[str, tuple[str, str, float]] = {}

    async def apps(request: web.Request) -> web.Response:
        balancer.apps = (await request.json())["urls"]
        slack.echo_url = str(request.url.with_path("/slack/events"))
        return web.json_response({})

    async def mentions(request: web.Request) -> web.Response:
        body = await request.json()
        events = request.url.with_path("/slack/events")

        async def ask(i: int) -> None:
            channel, number = channels[i % len(channels)], int(body["first"]) + i
            sender = slack.sender(str(events.with_query(to=i)))  # mentions take turns
            message, _ = await sender.mention(channel, users[i % len(users)], f"question {number}")
            questions[f"q{number}"] = (channel, message.ts, message.versions[0][0])

        await asyncio.gather(*(ask(i) for i in range(int(body["count"]))))
        return web.json_response({})

    async def progress(request: web.Request) -> web.Response:
        keys = (await request.json())["keys"]
        return web.json_response(bursts.progress(answers_in(slack, questions), keys, text))

    async def state(request: web.Request) -> web.Response:
        return web.json_response(
            {
                "answers": answers_in(slack, questions),
                "asked": {k: at for k, (_, _, at) in questions.items()},
                "sends": xai.send_log,
                "rate_limited": Counter(c.method for c in slack.calls if c.status == 429),
                "calls": Counter(c.method for c in slack.calls if c.status == 200 and not c.error),
                "errors": Counter(f"{c.method} {c.error}" for c in slack.calls if c.error),
            }
        )

    limits = {
        "update_per_minute": values.TIER_PER_MINUTE[values.METHOD_TIERS["chat.update"]],
        "post_per_s": values.POST_RATE_PER_CHANNEL,
        "post_burst": values.POST_BURST_PER_CHANNEL,
    }
    env = {
        "SLACK_BOT_TOKEN": slack.bot_token,
        "SLACK_SIGNING_SECRET": slack.signing_secret,
        "SLACK_API_URL": slack.api_url,
        "XAI_API_KEY": xai.api_key,
        "XAI_BASE_URL": xai.base_url,
        "GROKBOT_XAI_API": "chat",
    }
    routes = {"/apps": apps, "/mentions": mentions, "/progress": progress, "/state": state}
    await serve_control(
        conn, {**routes, "/slack/events": balancer.forward}, {"env": env, "limits": limits}, slack, xai
    )
    if balancer.session is not None:
        await balancer.session.close()


# -- the harness --------------------------------------------------------------------------------


async def scratch_database(name: str, *, drop: bool) -> str:
    """Create (or drop) database `name` on the local PostgreSQL; its asyncpg URL."""
    import asyncpg  # grokbot's own driver

    server = await asyncpg.connect("postgresql://postgres@127.0.0.1:5432/postgres")
    try:
        await server.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if not drop:
            await server.execute(f'CREATE DATABASE "{name}"')
    finally:
        await server.close()
    return f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"


async def drive(control_url: str, ports: list[int], args: argparse.Namespace) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=control_url, timeout=60) as control:
        await control.post("/apps", json={"urls": [f"http://127.0.0.1:{p}/slack/events" for p in ports]})
        await asyncio.sleep(1.0)
        keys = [f"q{i}" for i in range(1, args.answers + 1)]
        await control.post("/mentions", json={"first": 1, "count": args.answers})
        await bursts.settle(control, {"keys": keys}, count=len(keys), quiet=args.quiet, within=args.timeout)
        await asyncio.sleep(2.0)  # late calls and 429s count too
        return dict((await control.post("/state", json={})).json(), keys=keys)


def start_instances(bot: Bot, env: dict[str, str], log: Path, count: int, processes: list[Any]) -> list[int]:
    """`count` processes of `bot` (appended to `processes` as they start), each on its port."""
    if count > 1 and bot.command[-2:] == ["bot", "run"]:  # grokbot, this version or another
        migrate = Bot(bot.name, [*bot.command[:-1], "migrate"], bot.cwd)
        if bursts.start_bot(migrate, env, log).wait(120) != 0:
            raise SystemExit(f"grokbot migrate failed:\n{log.read_text()[-3000:]}")
    ports = [bursts.free_port() for _ in range(count)]
    processes.extend(bursts.start_bot(bot, {**env, "PORT": str(port)}, log) for port in ports)
    for port, process in zip(ports, processes, strict=True):
        bursts.wait_port(port, process, log)
    return ports


def run_once(bot: Bot, run: int, args: argparse.Namespace) -> dict[str, Any]:
    text = answer_text(args.words, WORDS)
    fakes, parent, info = bursts.spawn_fakes(serve_fakes, text, args.tps, args.channels)
    database = f"bench_slack_burst_{run}_{int(time.time())}"
    shared = args.instances > 1
    processes: list[Any] = []
    with tempfile.TemporaryDirectory() as tmp:
        url = (
            asyncio.run(scratch_database(database, drop=False))
            if shared
            else f"sqlite+aiosqlite:///{tmp}/b.db"
        )
        try:
            env = {**info["env"], "DATABASE_URL": url}
            ports = start_instances(bot, env, Path(tmp) / "bot.log", args.instances, processes)
            state = asyncio.run(drive(info["control"], ports, args))
        finally:
            for process in processes:
                bursts.stop_bot(process)
            if shared:
                asyncio.run(scratch_database(database, drop=True))
            parent.send("stop")
            fakes.join(10)
    return measure(state, text, bot, run, info["limits"], args)


def measure(
    state: dict[str, Any], text: str, bot: Bot, run: int, limits: dict[str, Any], args: argparse.Namespace
) -> dict[str, Any]:
    keys = state["keys"]
    answers = [
        bursts.answer_lags(
            state["answers"].get(k, []), text, state["sends"].get(k, []), state["asked"].get(k)
        )
        for k in keys
    ]
    done = [a["done_at"] for a in answers if a["done_at"] is not None]
    streamed = [(int(k[1:]) - 1, a) for k, a in zip(keys, answers, strict=True) if a["end"] == a["end"]]

    def gates() -> Any:
        posts = {c: TokenBucket(limits["post_per_s"], limits["post_burst"]) for c in range(args.channels)}
        updates = SlidingWindow(limits["update_per_minute"])
        return (lambda i: posts[streamed[i][0] % args.channels]), (lambda i: updates)

    fresh: Gates = gates
    best = floor([a["start"] for _, a in streamed], [a["end"] for _, a in streamed], fresh)
    return {
        "bot": bot.name,
        "run": run,
        "command": bot.command,
        **bursts.summarize(answers),
        "broken": sum(1 for a in answers if not a["complete"] or a["notice"]),
        "notices": sum(1 for a in answers if a["notice"]),
        "wall_s": max(done) - min(state["asked"].values()) if done else None,
        "rate_limited_429": state["rate_limited"],
        "calls": state["calls"],
        "errors": state["errors"],
        "floor": {**best, "limits": limits},
        "per_answer": [{k: v for k, v in a.items() if k != "writes"} for a in answers],
    }


COLUMNS = [
    ("reply p50", lambda r: bursts.seconds(r["reply_lag_s_p50"])),
    ("first p50", lambda r: bursts.seconds(r["first_lag_s_p50"])),
    ("first p99", lambda r: bursts.seconds(r["first_lag_s_p99"])),
    ("final p50", lambda r: bursts.seconds(r["final_lag_s_p50"])),
    ("final p99", lambda r: bursts.seconds(r["final_lag_s_p99"])),
    ("broken", lambda r: f"{r['broken']}/{r['answers']}"),
    ("429s", lambda r: str(sum(r["rate_limited_429"].values()))),
    ("wall s", lambda r: bursts.seconds(r["wall_s"])),
    ("floor p50", lambda r: bursts.seconds(r["floor"]["final_lag_s_p50"])),
    ("floor p99", lambda r: bursts.seconds(r["floor"]["final_lag_s_p99"])),
]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--answers", type=int, default=20, help="mentions at once")
    parser.add_argument("--channels", type=int, default=20, help="channels they are spread over")
    parser.add_argument("--instances", type=int, default=1, help="processes behind the balancer")
    parser.add_argument("--timeout", type=float, default=400.0, help="seconds a burst may take")
    parser.add_argument("--quiet", type=float, default=70.0, help="seconds without a change that end it")
    bursts.add_bot_options(parser)
    args = parser.parse_args(argv)
    runs = []
    for run, bot in bursts.interleaved(bursts.bots(args), args.runs):
        runs.append(run_once(bot, run, args))
        print(f"run {run} {bot.name}: final p50 {bursts.seconds(runs[-1]['final_lag_s_p50'])} s", flush=True)
    print()
    bursts.report(runs, COLUMNS)
    for r in runs:
        where = {k: r[k] for k in ("writes", "writes_ahead_of_a_final_mean", "ended_before_first_post")}
        limited, errors = dict(r["rate_limited_429"]), dict(r["errors"])
        print(f"run {r['run']} {r['bot']}: 429s {limited}; errors {errors}; {where}")
    name = "slack_burst.json" if args.instances == 1 else "slack_instances.json"
    save({"settings": vars(args), "runs": runs}, RESULTS / name)


if __name__ == "__main__":
    main()
