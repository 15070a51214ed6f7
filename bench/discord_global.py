"""What Discord's global pacer (adapters/discord/pacing.py) costs a request when its window has room.

    python -m bench.discord_global [--calls 20000] [--rounds 6]

A request is discord.py's `HTTPClient.request` replaced by a stub that returns at once, so that
only the pacer's check is measured: `bare` calls the stub, `paced` calls it through
`GlobalPacer.install`'s wrapper. The pacer's window holds 50 requests per 1.1 s, so to keep it
with room the clock given to it advances 1.1 s per call (each call then finds the window empty but
for itself, which is also the cheapest case of `_delay`; the common case in production). Rounds of
the two variants alternate in one run (the machine's speed drifts); the medians and their ratio are
printed.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from typing import Any

from discord.http import Route

from adapters.discord.pacing import SPAN_S, GlobalPacer


class Stub:
    async def request(self, route: Route, **_kwargs: Any) -> None:
        return None


async def per_call_us(http: Stub, calls: int) -> float:
    route = Route("GET", "/gateway/bot")
    started = time.perf_counter()
    for _ in range(calls):
        await http.request(route)
    return (time.perf_counter() - started) / calls * 1e6


async def main(calls: int, rounds: int) -> None:
    ticks = iter(range(10**12))
    pacer = GlobalPacer(clock=lambda: next(ticks) * SPAN_S)
    bare, paced = Stub(), Stub()
    pacer.install(paced)  # type: ignore[arg-type]
    figures: dict[str, list[float]] = {"bare": [], "paced": []}
    await per_call_us(bare, calls)  # warm-up
    await per_call_us(paced, calls)
    for _ in range(rounds):
        figures["bare"].append(await per_call_us(bare, calls))
        figures["paced"].append(await per_call_us(paced, calls))
    assert pacer.held == 0
    for name, values in figures.items():
        shown = [round(v, 3) for v in values]
        print(f"{name:6s} per call: median {statistics.median(values):.3f} µs  rounds {shown}")
    bare_us, paced_us = statistics.median(figures["bare"]), statistics.median(figures["paced"])
    print(f"paced - bare: {paced_us - bare_us:.3f} µs per request; paced / bare: {paced_us / bare_us:.2f}x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=6)
    args = parser.parse_args()
    asyncio.run(main(args.calls, args.rounds))
