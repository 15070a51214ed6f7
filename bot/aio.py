"""The event loop grokbot runs on: uvloop where it is installed (Linux and macOS, a dependency
there), else asyncio's own.

Why: a streamed answer wakes the process for every chunk that arrives, and on small virtual
machines each wake-up of asyncio's pure-Python loop costs far more than the work it wakes for.
uvloop runs the same protocols and transports (so the rest of the code does not change) with a
loop written in C. Measured with `python bench/grok_stream.py` ("bare socket reads" rows) and the
streaming benchmarks; the figures are in docs/architecture.md.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop]:
    """uvloop's loop constructor when it can be imported, else asyncio's."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop
    return uvloop.new_event_loop


def loop_name() -> str:
    return "uvloop" if loop_factory() is not asyncio.new_event_loop else "asyncio"


def run(main: Coroutine[Any, Any, T], *, loop: str | None = None) -> T:
    """`asyncio.run(main)` on grokbot's event loop, or on the one named ("uvloop", "asyncio")."""
    factory = asyncio.new_event_loop if loop == "asyncio" else loop_factory()
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main)
