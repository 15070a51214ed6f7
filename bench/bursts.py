"""What the burst benchmarks share: each answer's first and final lag read from the fakes' version
timelines, p50/p99, bots started as processes (grokbot or a peer), interleaved runs and the report
with ratios (what the limits allow is bench/floors.py's).

Lags, per answer, on the fakes' clock (time.perf_counter, system-wide on Linux):
- first lag: the fake xAI's first write of the answer's stream → the first version of one of its
  messages that begins with the answer's first word (a status or placeholder does not count);
- final lag: the fake's last write of the stream → the first moment its messages, each as last
  edited, show exactly the answer (whitespace aside, so a split into several messages counts and an
  in-progress marker does not).
Streams are told apart by the question they answer ("question N" in the prompt), so a bot needs to
send no header of ours.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import multiprocessing
import os
import re
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

QUESTION = re.compile(r"question (\d+)")
NOTICE = "⚠️"  # how grokbot (and the issue) mark a message that only says what happened
SETTINGS = {"GROKBOT_USER_DAILY_USD": "0", "GROKBOT_USER_MONTHLY_USD": "0"}
# Every bot answers with the same Chat Completions model of the fake xAI (peers speak only Chat
# Completions, and a non-reasoning model takes their sampling arguments).
MODEL = "grok-4-1-fast-non-reasoning"


def question_key(text: str) -> str:
    """The key of a prompt whose last "question N" is question 7: "q7" ("" without one)."""
    found = QUESTION.findall(text)
    return f"q{found[-1]}" if found else ""


def keyed_xai() -> Any:
    """A FakeXAI (made in the fakes' process) that logs each stream's writes under its question."""
    from tests.fakes.xai import FakeXAI
    from tests.fakes.xai.models import text_of

    class QuestionXAI(FakeXAI):
        def send_log_key(self, request: Any, body: dict[str, Any]) -> str:
            users = [m for m in body.get("messages", []) if isinstance(m, dict) and m.get("role") == "user"]
            return question_key(text_of(users[-1].get("content"))) if users else ""

    return QuestionXAI()


# -- one answer -----------------------------------------------------------------------------------


def words(text: str) -> str:
    return " ".join(text.split())


def answer_lags(
    messages: Sequence[Sequence[tuple[float, str]]],
    text: str,
    sends: Sequence[Sequence[float]],
    asked: float | None = None,
) -> dict[str, Any]:
    """One answer: `messages` its messages in posting order, each its (time, content) versions;
    `sends` the fake xAI's (time, characters) writes of its stream; `asked` when the question was
    posted (a bot that starts its stream late shows a short first lag but a long reply lag)."""
    first_word, whole = text.split()[0], words(text)
    # No stream (the bot never asked): nothing to measure against, and never complete.
    start, end = (float(sends[0][0]), float(sends[-1][0])) if sends else (math.nan, math.nan)
    current = [""] * len(messages)
    shown_at = done_at = None
    writes: list[tuple[float, str]] = []
    timeline = sorted((t, i, n, c) for i, m in enumerate(messages) for n, (t, c) in enumerate(m))
    for at, index, number, content in timeline:
        current[index] = content
        if shown_at is None and content.lstrip().startswith(first_word):
            shown_at = at
        after = done_at is not None  # e.g. a stream's stop that only adds buttons
        complete = not after and words(" ".join(current)) == whole
        done_at = at if complete else done_at
        label = "final" if complete else "after" if after else "post" if number == 0 else "interim"
        writes.append((at, label))
    return {
        "start": start,
        "end": end,
        "first_lag_s": None if shown_at is None or not sends else shown_at - start,
        "reply_lag_s": None if shown_at is None or asked is None else shown_at - asked,
        "final_lag_s": None if done_at is None or not sends else done_at - end,
        "done_at": done_at,
        "posted_at": min((m[0][0] for m in messages if m), default=None),
        "complete": done_at is not None and bool(sends),
        "notice": any(c.lstrip().startswith(NOTICE) for m in messages for _, c in m[-1:]),
        "messages": len(messages),
        "writes": writes,
    }


def progress(
    answers: Mapping[str, Sequence[Sequence[tuple[float, str]]]], keys: Sequence[str], text: str
) -> dict[str, int]:
    """How many of `keys` show the whole answer now, and how many versions there are in all (for
    `settle`; computed where the fakes are, so that polling stays light)."""
    whole = words(text)
    latest = {k: " ".join(m[-1][1] for m in answers.get(k, []) if m) for k in keys}
    return {
        "complete": sum(words(v) == whole for v in latest.values()),
        "versions": sum(len(m) for ms in answers.values() for m in ms),
    }


async def settle(control: Any, body: dict[str, Any], *, count: int, quiet: float, within: float) -> None:
    """Until `count` answers are whole (POST /progress with `body`), or nothing has changed for
    `quiet` seconds (answers that will never be whole), or `within` seconds have passed."""
    started = last_change = time.monotonic()
    seen = -1
    while True:
        now = (await control.post("/progress", json=body)).json()
        if now["complete"] >= count:
            return
        if now["versions"] != seen:
            seen, last_change = now["versions"], time.monotonic()
        if time.monotonic() - last_change > quiet or time.monotonic() - started > within:
            return
        await asyncio.sleep(0.25)


def pct(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (inclusive interpolation; p99 of 10 values lies just under the largest)."""
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[round(q) - 1]


def where_time_went(answers: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """How the scope's writes were spent while finals waited: for each answer, the other answers'
    writes (first posts, interim edits, finals) between its stream's end and its final."""
    ahead: dict[str, list[int]] = {"post": [], "interim": [], "final": []}
    for mine in answers:
        if mine["done_at"] is None:
            continue
        others = [w for a in answers if a is not mine for w in a["writes"]]
        window = [label for at, label in others if mine["end"] < at < mine["done_at"]]
        for label, counts in ahead.items():
            counts.append(window.count(label))
    first_end = min((a["end"] for a in answers), default=0.0)
    last_done = max((a["done_at"] or 0.0 for a in answers), default=0.0)
    pending = [w for a in answers for w in a["writes"] if first_end < w[0] <= last_done]
    return {
        "writes_ahead_of_a_final_mean": {k: statistics.mean(v) if v else 0 for k, v in ahead.items()},
        "interim_edits_while_finals_pending": sum(1 for _, label in pending if label == "interim"),
        "ended_before_first_post": sum(
            1 for a in answers if a["posted_at"] is None or a["posted_at"] > a["end"]
        ),
        "writes": {k: sum(1 for a in answers for _, lb in a["writes"] if lb == k) for k in ahead},
    }


def summarize(answers: Sequence[dict[str, Any]]) -> dict[str, Any]:
    firsts = [a["first_lag_s"] for a in answers if a["first_lag_s"] is not None]
    finals = [a["final_lag_s"] for a in answers if a["final_lag_s"] is not None]
    return {
        "answers": len(answers),
        "complete": sum(a["complete"] for a in answers),
        "first_lag_s_p50": pct(firsts, 50),
        "first_lag_s_p99": pct(firsts, 99),
        "reply_lag_s_p50": pct([a["reply_lag_s"] for a in answers if a["reply_lag_s"] is not None], 50),
        "final_lag_s_p50": pct(finals, 50),
        "final_lag_s_p99": pct(finals, 99),
        **where_time_went(answers),
    }


# -- bots as processes ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Bot:
    name: str
    command: list[str]
    cwd: str | None = None


def add_bot_options(parser: argparse.ArgumentParser, *, runs: int = 2) -> None:
    parser.add_argument("--command", default="", help="grokbot's command (default: python -m bot run)")
    parser.add_argument("--peer-command", default="", help="another bot reading the same variables")
    parser.add_argument("--peer-cwd", default=None, help="the peer's working directory")
    parser.add_argument("--peer-name", default="peer")
    parser.add_argument("--runs", type=int, default=runs, help="runs of each bot, interleaved")
    parser.add_argument("--words", type=int, default=300)
    parser.add_argument("--tps", type=float, default=100.0, help="upstream tokens per second")


def bots(args: argparse.Namespace) -> list[Bot]:
    command = shlex.split(args.command) if args.command else [sys.executable, "-m", "bot", "run"]
    found = [Bot("grokbot", command)]
    if args.peer_command:
        found.append(Bot(args.peer_name, shlex.split(args.peer_command), args.peer_cwd))
    return found


def interleaved(found: Sequence[Bot], runs: int) -> Iterator[tuple[int, Bot]]:
    """grokbot, peer, peer, grokbot, grokbot, peer, ...: each bot as often first as second."""
    for run in range(runs):
        for bot in found if run % 2 == 0 else list(reversed(found)):
            yield run + 1, bot


def spawn_fakes(target: Callable[..., None], *args: object) -> tuple[Any, Connection, dict[str, Any]]:
    """Start `target(conn, *args)` (the fakes' `serve_fakes`) in a child process: the process, this
    side's pipe end, and what the child sent first (bench/timing.py's `serve_control`)."""
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    process = context.Process(target=target, args=(child, *args), daemon=True)
    process.start()
    return process, parent, parent.recv()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_bot(bot: Bot, env: Mapping[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen(
            bot.command,
            env={**os.environ, **SETTINGS, "GROKBOT_MODEL": MODEL, **env},
            cwd=bot.cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop_bot(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the whole process group (a wrapper's children too), SIGKILL after 15 s."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(5)


def wait_port(port: int, process: subprocess.Popen[bytes], log: Path, within: float = 60.0) -> None:
    deadline = time.monotonic() + within
    while True:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"the bot never listened on {port}:\n{log.read_text()[-3000:]}")
        time.sleep(0.1)


# -- the report -----------------------------------------------------------------------------------


def seconds(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def report(
    runs: Sequence[dict[str, Any]], columns: Sequence[tuple[str, Callable[[dict[str, Any]], str]]]
) -> None:
    """One row per run, then each bot's medians over its runs and their ratio to grokbot's."""
    names = list(dict.fromkeys(r["bot"] for r in runs))
    header = ["run", "bot", *(c[0] for c in columns)]
    rows = [[str(r["run"]), r["bot"], *(f(r) for _, f in columns)] for r in runs]
    print("  ".join(f"{h:>10}" for h in header))
    for row in rows:
        print("  ".join(f"{v:>10}" for v in row))
    keys = ("first_lag_s_p50", "final_lag_s_p50", "final_lag_s_p99")
    medians = {}
    for name in names:
        mine = [r for r in runs if r["bot"] == name]
        medians[name] = {
            k: statistics.median([r[k] for r in mine if r[k] is not None] or [0.0]) for k in keys
        }
    print("\nmedians over runs (s): " + ", ".join(keys))
    ours = medians.get("grokbot", {})
    for name in names:
        ratios = ", ".join(f"{medians[name][k] / ours[k]:.2f}×" if ours.get(k) else "—" for k in keys)
        values = ", ".join(f"{medians[name][k]:.2f}" for k in keys)
        print(f"  {name:>10}: {values}   (against grokbot: {ratios})")
