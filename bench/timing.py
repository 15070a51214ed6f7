"""What the streaming benchmarks share: a Grok client that notes when each text delta reached the
bot, the answer they stream, and how they print and save their figures."""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Coroutine, Mapping, Sequence
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from aiohttp import web

from bot.aio import loop_name, run
from bot.grok import ChatRequest, ContentDelta, Gathering, GrokClient, StreamEvent

T = TypeVar("T")


def add_loop_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--loop",
        choices=("uvloop", "asyncio"),
        default=loop_name(),
        help="the bot's event loop (default: grokbot's own, bot/aio.py)",
    )


def run_on(loop: str, main: Coroutine[Any, Any, T]) -> T:
    """Run the bot's side of a benchmark on the named event loop (the fakes keep their own)."""
    return run(main, loop=loop)


class TimedGrok(GrokClient):
    """`arrivals[conv_id]`: (time, answer length so far) per delta; `marks`: (first, last, tokens)
    per finished answer, shared by the instances of one run (clear it between runs)."""

    marks: ClassVar[list[tuple[float, float, int]]] = []

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.arrivals: dict[str, list[tuple[float, int]]] = {}

    async def stream(
        self, request: ChatRequest, *, gathering: Gathering | None = None
    ) -> AsyncGenerator[StreamEvent, None]:
        arrivals = self.arrivals.setdefault(request.conv_id or "", [])
        start = len(arrivals)
        length = 0
        try:
            async for event in super().stream(request, gathering=gathering):
                if type(event) is ContentDelta:
                    length += len(event.text)
                    arrivals.append((time.perf_counter(), length))
                yield event
        finally:  # the engine stops reading at StreamEnd
            mine = arrivals[start:]
            first, last = (mine[0][0], mine[-1][0]) if mine else (0.0, 0.0)
            self.marks.append((first, last, len(mine)))


def answer_text(words: int, vocabulary: Sequence[str]) -> str:
    """A sentence of `words` words cycling through `vocabulary`."""
    body = " ".join(vocabulary[i % len(vocabulary)] for i in range(words))
    return body[0].upper() + body[1:] + "."


def answer_rows(results: Mapping[str, Any], *, cpu_target: str) -> list[tuple[str, str, str]]:
    """The rows the adapter benchmarks report first: latency, edits, tokens and CPU of one answer."""
    return [
        (
            "first words visible after first upstream token, p50",
            f"{results['first_visible_ms_p50']:.1f} ms",
            "≤ 10 ms",
        ),
        (
            "whole answer visible after last upstream token, p50",
            f"{results['complete_ms_p50']:.1f} ms",
            "≤ 20 ms",
        ),
        ("edits (visible versions) per answer", f"{results['edits_per_answer']:.1f}", ""),
        ("tokens per answer", f"{results['tokens_per_answer']:.0f}", ""),
        ("CPU per answer", f"{results['cpu_s_per_answer'] * 1000:.0f} ms", ""),
        ("CPU per 1,000 streamed tokens", f"{results['cpu_s_per_1000_tokens']:.3f} s", cpu_target),
    ]


def print_table(rows: Sequence[tuple[str, str, str]]) -> None:
    """(measure, value, target) rows, aligned."""
    width = max(len(r[0]) for r in rows)
    print(f"{'measure':<{width}}  {'value':>14}  target")
    for name, value, target in rows:
        print(f"{name:<{width}}  {value:>14}  {target}")


def save(results: Mapping[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwritten to {path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}")


def sent_span(log: Mapping[str, Sequence[Sequence[float]]]) -> tuple[float, float]:
    """(first, last) time the fake xAI wrote answer text for the newest conversation in its
    `send_log` (calls without a conversation id, like the upstream-only baseline, are left out).
    Measuring from the upstream writes, not from when the bot parsed them, keeps the figures honest
    whatever the bot's reads gather."""
    newest = [entries for conv, entries in log.items() if conv][-1]
    return float(newest[0][0]), float(newest[-1][0])


def to_send_times(
    arrivals: Sequence[tuple[float, int]], sends: Sequence[Sequence[float]]
) -> list[tuple[float, int]]:
    """`arrivals` ((time, answer length so far) per delta the bot parsed) with each time replaced
    by when the fake wrote the bytes that completed that length."""
    out: list[tuple[float, int]] = []
    index = 0
    for _, length in arrivals:
        while index < len(sends) - 1 and sends[index][1] < length:
            index += 1
        out.append((float(sends[index][0]), length))
    return out


async def serve_control(
    conn: Connection,
    routes: Mapping[str, Callable[[web.Request], Awaitable[web.StreamResponse]]],
    info: Mapping[str, Any],
    *fakes: Any,
) -> None:
    """In the fakes' child process: serve the benchmark's control `routes` (POST) on a loopback
    port, send `info` and the control URL to the parent, and once the parent says stop, stop the
    control server and then the `fakes`."""
    control = web.Application()
    for path, handler in routes.items():
        control.router.add_post(path, handler)
    runner = web.AppRunner(control, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    conn.send({"control": f"http://127.0.0.1:{runner.addresses[0][1]}", **info})
    await asyncio.get_running_loop().run_in_executor(None, conn.recv)  # until told to stop
    await runner.cleanup()
    for fake in fakes:
        await fake.stop()
