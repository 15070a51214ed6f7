"""A Discord bot *process*, as deployed, measured from outside against the loopback fakes.

    python -m bench.discord_process [--answers 5] [--words 300] [--tps 100] [--command "..."]

bench/discord_stream.py runs the adapter inside the benchmark's own process. This one starts the
bot as its own process (by default `python -m bot run`, what the Procfile runs, with its web
server and scheduler) and reads that process's CPU time from /proc, so nothing of the harness is
counted. The bot is configured only through the environment of ../shared/design/CONTRACT.md
(DISCORD_TOKEN, DISCORD_API_BASE_URL, DISCORD_GATEWAY_URL, XAI_API_KEY, XAI_BASE_URL, ...), so
`--command` can start any other bot that reads the same variables; its answer may be in the
message's content or in its first embed's description. That is how a reference bot is measured on
the same machine, in the same run as ours.

Linux only (/proc). CPU is counted for the started process and its descendants, in the kernel's
clock ticks (10 ms), so the total over all answers is exact to 10 ms and one answer's only roughly.
Prints a table and writes bench/results/discord_process.json.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import httpx
from aiohttp import web

from bench.timing import answer_rows, answer_text, print_table, save, serve_control

RESULTS = Path(__file__).resolve().parent / "results" / "discord_process.json"
SENTENCE = "the quick brown fox jumps over a lazy dog while grok streams every token into discord"
WORDS = SENTENCE.split(" ")
TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def shown(message: dict[str, Any]) -> str:
    """What a reader sees of a message: its content, or its first embed's description."""
    embeds = message.get("embeds") or []
    return message["content"] or (embeds[0].get("description") or "" if embeds else "")


# -- the fakes, in a child process --------------------------------------------------------------


def serve_fakes(conn: Connection, text: str, tps: float, channels: int) -> None:
    asyncio.run(_serve_fakes(conn, text, tps, channels))


def discord_env(discord_fake: Any, xai: Any, guild: str) -> dict[str, str]:
    """The contract's variables that point a bot at the fakes."""
    return {
        "DISCORD_TOKEN": discord_fake.token,
        "DISCORD_API_BASE_URL": discord_fake.rest_url,
        "DISCORD_GATEWAY_URL": discord_fake.gateway_url,
        "DISCORD_GUILD_IDS": guild,
        "XAI_API_KEY": xai.api_key,
        "XAI_BASE_URL": xai.base_url,
    }


def shown_discord() -> Any:
    """A FakeDiscord (made in the fakes' process) that records each version as a reader sees it,
    embeds included."""
    from tests.fakes.discord import FakeDiscord

    class Shown(FakeDiscord):
        def _new_message(self, channel_id: str, **kwargs: Any) -> dict[str, Any]:
            message = super()._new_message(channel_id, **kwargs)
            self.message_versions[message["id"]][-1] = shown(message)
            return message

        def _edit_message(self, message: dict[str, Any], body: Any, files: Any) -> None:
            super()._edit_message(message, body, files)
            self.message_versions[message["id"]][-1] = shown(message)

    return Shown()


async def _serve_fakes(conn: Connection, text: str, tps: float, count: int) -> None:
    from tests.fakes.xai import FakeXAI, ScriptedReply, ScriptedResponse

    discord_fake, xai = shown_discord(), FakeXAI()
    await discord_fake.start()
    await xai.start()
    guild = discord_fake.add_guild("bench")
    channels = [discord_fake.add_channel(guild, f"bench-{i}") for i in range(count)]
    user = discord_fake.add_user("asker", guild_id=guild)
    # The same answer on both APIs: grokbot as deployed asks the Responses API, peers Chat Completions.
    xai.default_reply = ScriptedReply(text=text, tokens_per_second=tps, chunk_chars=4)
    xai.default_response = ScriptedResponse(text=text, tokens_per_second=tps, chunk_chars=4)
    xai.send_log = {}

    async def mention(request: web.Request) -> web.Response:
        channel = channels[int((await request.json())["channel"])]
        xai.send_log.clear()
        await discord_fake.user_message(channel, user, "question", mention_bot=True)
        return web.json_response({"channel": channel})

    async def state(request: web.Request) -> web.Response:
        channel = (await request.json())["channel"]
        messages = [
            {"versions": discord_fake.versions(m["id"]), "times": discord_fake.version_times[m["id"]]}
            for m in discord_fake.bot_messages(channel)
        ]
        sends = [entry for entries in xai.send_log.values() for entry in entries]
        identified = any(s.ws is not None for s in discord_fake.sessions.values())
        return web.json_response(
            {
                "identified": identified,
                "messages": messages,
                "sends": sends,
                "rate_limited": len(discord_fake.rate_limited),
            }
        )

    await serve_control(
        conn,
        {"/mention": mention, "/state": state},
        {"env": discord_env(discord_fake, xai, guild)},
        discord_fake,
        xai,
    )


# -- the harness --------------------------------------------------------------------------------


def _stat(pid: int) -> list[str]:
    """/proc/PID/stat's fields after the command name (field 3, the state, is index 0)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def cpu_seconds(pid: int) -> float:
    """User + system CPU of the process and its descendants (all their threads, living and ended,
    and children already reaped), from /proc: a bot started through a wrapper (`sh -c`, `uv run`)
    runs as the wrapper's child."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                children.setdefault(int(_stat(int(entry.name))[1]), []).append(int(entry.name))
            except (OSError, IndexError, ValueError):
                continue  # gone meanwhile
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        try:
            fields = _stat(current)
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])
        todo.extend(children.get(current, ()))
    return total / TICKS


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def wait_answer(control: httpx.AsyncClient, channel: str, text: str, within: float) -> dict[str, Any]:
    """The channel's state once the bot's messages show `text` in full (polled from this process,
    so the bot's CPU is not spent on it)."""
    deadline = time.monotonic() + within
    while True:
        state = (await control.post("/state", json={"channel": channel})).json()
        if "\n\n".join(m["versions"][-1] for m in state["messages"] if m["versions"]) == text:
            return state
        if time.monotonic() > deadline:
            shown = [m["versions"][-1][:200] for m in state["messages"] if m["versions"]]
            raise TimeoutError(f"no complete answer in {channel} after {within} s; shown: {shown}")
        await asyncio.sleep(0.05)


def measure(state: dict[str, Any]) -> dict[str, Any]:
    sends = state["sends"]
    first, last = sends[0][0], sends[-1][0]
    shown_at = min(t for m in state["messages"] for v, t in zip(m["versions"], m["times"], strict=True) if v)
    done_at = max(m["times"][-1] for m in state["messages"])
    return {
        "first_visible_ms": (shown_at - first) * 1000,
        "complete_ms": (done_at - last) * 1000,
        "edits": sum(len(m["versions"]) for m in state["messages"]),
        "tokens": len(sends),
    }


class NeverConnected(Exception):
    pass


async def drive(
    bot: subprocess.Popen[bytes], control_url: str, text: str, args: argparse.Namespace
) -> dict[str, Any]:
    """Wait for the bot's gateway session, warm it up, then measure idle and answering CPU."""
    async with httpx.AsyncClient(base_url=control_url, timeout=30) as control:
        deadline = time.monotonic() + 60
        while not (await control.post("/state", json={"channel": ""})).json()["identified"]:
            if bot.poll() is not None or time.monotonic() > deadline:
                raise NeverConnected
            await asyncio.sleep(0.2)
        await asyncio.sleep(2.0)  # READY, GUILD_CREATE, command sync
        warm = (await control.post("/mention", json={"channel": 0})).json()["channel"]
        await wait_answer(control, warm, text, 60)
        await asyncio.sleep(3.0)  # let the warm-up's rate-limit windows and writes pass

        idle = cpu_seconds(bot.pid)
        await asyncio.sleep(args.idle)
        idle = cpu_seconds(bot.pid) - idle

        answers = []
        total = cpu_seconds(bot.pid)
        for n in range(args.answers):
            before = cpu_seconds(bot.pid)
            channel = (await control.post("/mention", json={"channel": 1 + n})).json()["channel"]
            state = await wait_answer(control, channel, text, 60)
            await asyncio.sleep(args.settle)  # the bookkeeping after the last edit counts too
            answers.append({**measure(state), "cpu_s": cpu_seconds(bot.pid) - before})
        total = cpu_seconds(bot.pid) - total
    tokens = sum(a["tokens"] for a in answers)
    return {
        "answers": answers,
        "first_visible_ms_p50": statistics.median(a["first_visible_ms"] for a in answers),
        "complete_ms_p50": statistics.median(a["complete_ms"] for a in answers),
        "edits_per_answer": statistics.mean(a["edits"] for a in answers),
        "tokens_per_answer": tokens / len(answers),
        "cpu_s_per_answer": total / len(answers),
        "cpu_s_per_1000_tokens": 1000 * total / tokens,
        "idle_cpu_s_per_minute": 60 * idle / args.idle,
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    text = answer_text(args.words, WORDS)
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    fakes = context.Process(target=serve_fakes, args=(child, text, args.tps, args.answers + 1), daemon=True)
    fakes.start()
    info = parent.recv()
    command = shlex.split(args.command) if args.command else [sys.executable, "-m", "bot", "run"]
    with tempfile.TemporaryDirectory() as tmp, open(Path(tmp) / "bot.log", "wb") as log:
        env = {
            **os.environ,
            **info["env"],
            "DATABASE_URL": f"sqlite+aiosqlite:///{tmp}/bench.db",
            "PORT": str(free_port()),
            "GROKBOT_USER_DAILY_USD": "0",
            "GROKBOT_USER_MONTHLY_USD": "0",
        }
        bot = subprocess.Popen(
            command, env=env, cwd=args.cwd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            results = asyncio.run(drive(bot, info["control"], text, args))
        except NeverConnected:
            raise SystemExit(
                "the bot never connected:\n" + (Path(tmp) / "bot.log").read_text()[-3000:]
            ) from None
        finally:  # the whole process group: a wrapper's children too
            os.killpg(bot.pid, signal.SIGTERM)
            try:
                bot.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(bot.pid, signal.SIGKILL)
            parent.send("stop")
            fakes.join(10)
    return {
        "command": command,
        **results,
        "settings": {"words": args.words, "tokens_per_second": args.tps, "settle_s": args.settle},
    }


def report(results: dict[str, Any]) -> None:
    print(f"bot: {shlex.join(results['command'])} (CPU per answer includes the settle after it)")
    idle = ("CPU while idle, per minute", f"{results['idle_cpu_s_per_minute']:.3f} s", "")
    print_table([*answer_rows(results, cpu_target="≤ 0.09 s"), idle])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--answers", type=int, default=5, help="sequential answers measured (each in its channel)"
    )
    parser.add_argument("--words", type=int, default=300)
    parser.add_argument("--tps", type=float, default=100.0, help="upstream tokens per second")
    parser.add_argument("--command", default="", help="the bot to start (default: python -m bot run)")
    parser.add_argument("--cwd", default=None, help="its working directory")
    parser.add_argument("--settle", type=float, default=0.5, help="seconds counted after each answer")
    parser.add_argument("--idle", type=float, default=10.0, help="seconds of idle CPU measured first")
    args = parser.parse_args(argv)
    results = run(args)
    report(results)
    save(results, RESULTS)


if __name__ == "__main__":
    main()
