"""When work wakes: an Alarm runs its work at start, at once when rung, and else when the time its
work names comes (the next due row or slot, at most `idle` later); a Bell rings in-process."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]
# After a failed wake-up (the database away for a moment, say): soon, but not in a busy loop.
FAILURE_PAUSE = 5.0


class Bell:
    """An in-process "there is something new": every listener is called when it rings. Listeners
    are called synchronously and must only take note (an Alarm's `ring`)."""

    def __init__(self) -> None:
        self._listeners: list[Callable[[], None]] = []

    def listen(self, listener: Callable[[], None]) -> None:
        self._listeners.append(listener)

    def ring(self) -> None:
        for listener in self._listeners:
            listener()


class Alarm:
    """A task that runs `work` when it is due: when started, at once when rung, and else after the
    pause `work` returned, in seconds (clamped to [least, idle]; None means `idle`). A ring while
    the work runs is kept: the work runs again right after. `sleep` is injected so that tests
    drive the pauses with their own clock.

    Not an APScheduler job: a job woken while it runs is skipped (max_instances), so a wake-up that
    came during a run would wait for the next interval; and a job's pauses follow the real clock."""

    def __init__(
        self,
        name: str,
        work: Callable[[], Awaitable[float | None]],
        *,
        least: float,
        idle: float,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.name = name
        self._work = work
        self._least = least
        self._idle = idle
        self._sleep = sleep
        self._rung = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    @property
    def alive(self) -> bool:
        """Started, not stopped, and its task has not ended."""
        return self._task is not None and not self._task.done()

    def start(self, *, after: float = 0.0) -> None:
        """Run the work `after` seconds from now (or when rung), then as it asks; inside the
        running event loop."""
        self._stopping = False
        self._task = asyncio.get_running_loop().create_task(self._run(after), name=f"alarm:{self.name}")

    def ring(self) -> None:
        """Run the work at once (or right after the run in progress)."""
        self._rung.set()

    async def stop(self, *, grace: float) -> None:
        """Let the work in progress finish (up to `grace` seconds), then end the task."""
        self._stopping = True
        task, self._task = self._task, None
        if task is None:
            return
        self._rung.set()  # ends a pause at once
        done, _ = await asyncio.wait({task}, timeout=grace)
        if not done:
            task.cancel()
            await asyncio.wait({task})

    async def _run(self, first: float) -> None:
        if first > 0:
            await self._pause(first)
        while not self._stopping:
            self._rung.clear()
            pause = await self._once()
            # No await between the work's end and this check: a ring during the work is seen here.
            if not self._stopping and not self._rung.is_set():
                await self._pause(pause)

    async def _once(self) -> float:
        """One run of the work; the pause before the next."""
        try:
            wait = await self._work()
        # The alarm's one catch-all, around one wake-up (the work catches per row or slot within):
        # log it with its traceback and try again after a short pause, as a timer job would.
        except Exception:
            log.exception("%s: wake-up failed", self.name)
            return min(FAILURE_PAUSE, self._idle)
        return self._idle if wait is None else min(max(wait, self._least), self._idle)

    async def _pause(self, seconds: float) -> None:
        rung = asyncio.ensure_future(self._rung.wait())
        timer = asyncio.ensure_future(self._sleep(seconds))
        try:
            await asyncio.wait({rung, timer}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            rung.cancel()
            timer.cancel()
