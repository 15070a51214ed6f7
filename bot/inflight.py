"""Answers in flight (issue 18): what a stopping process waits for, and what a dead one left behind.

Each streamed answer registers here (`InFlight.begin`) for as long as it runs, and tells where it
shows (`Flight.showing`: the message being written and its native stream), which is recorded in
the database (bot.store.open_answers: one insert once the first message exists, one delete at the
end). On SIGTERM the composition root calls `settle(grace)`: answers that end within the grace
period end as usual; each still running after it is interrupted (its task cancelled, flagged) and
bot.answers closes it like a failure: what was shown kept, the INTERRUPTED note at its end, the
streamed tokens charged, the turn recorded. A process that dies without that leaves its rows:
`close_orphans` (run by every instance on each heartbeat, so at start too) closes the answers of
instances no longer alive through the platform (`ClosesOrphans.close_orphan`).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Collection, Mapping
from datetime import UTC, datetime

from sqlalchemy.exc import SQLAlchemyError

from bot import store
from bot.db import Sessions
from bot.errors import PlatformError, PlatformRateLimited
from bot.platform import ClosesOrphans, OpenMessage, Place, Platform
from bot.wording import INTERRUPTED

__all__ = ["CLOSE_WITHIN_S", "Flight", "InFlight", "close_orphans"]

log = logging.getLogger(__name__)

# After the grace period, how long the interrupted answers may take to stop their streams, make
# their last edits and record their turns (the platforms' SIGKILL comes 30 s after SIGTERM).
CLOSE_WITHIN_S = 4.0


class Flight:
    """One answer in flight: its task (to interrupt), and its row in the database once it shows."""

    def __init__(self, registry: InFlight, place: Place, task: asyncio.Task[object] | None) -> None:
        self._registry = registry
        self.place = place
        self.task = task
        self.interrupted = False  # cut short by a stop: bot.answers closes it with the note
        self.finishing = False  # the whole answer has arrived: only its final edit is left
        self._latest: OpenMessage | None = None
        self._row: int | None = None
        self._writing: asyncio.Task[None] | None = None

    def showing(self, message_id: str, stream: str) -> None:
        """The answer is written into `message_id` now (through native stream `stream`, or "");
        recorded in the background, once per change."""
        if not message_id:
            return
        latest = OpenMessage(self.place, message_id, stream)
        if latest == self._latest:
            return
        self._latest = latest
        if self._writing is None or self._writing.done():
            self._writing = asyncio.create_task(self._write(), name=f"open-answer:{self.place.key}")

    def interrupt(self) -> None:
        if self.interrupted or self.task is None or self.task.done():
            return
        self.interrupted = True
        self.task.cancel()

    async def _write(self) -> None:
        registry = self._registry
        written: OpenMessage | None = None
        while self._latest is not None and self._latest != written:
            target = self._latest
            try:
                if self._row is None:
                    self._row = await store.add_open_answer(
                        registry.sessions, target, instance=registry.instance, now=registry.clock()
                    )
                else:
                    await store.move_open_answer(registry.sessions, self._row, target)
            except (SQLAlchemyError, OSError):
                log.warning("could not record an answer in progress in %s", self.place.key, exc_info=True)
                return
            written = target

    async def end(self) -> None:
        """The answer ended: its row goes."""
        if self._writing is not None:
            await asyncio.gather(self._writing, return_exceptions=True)
        if self._row is not None:
            try:
                await store.remove_open_answer(self._registry.sessions, self._row)
            except (SQLAlchemyError, OSError):
                log.warning("could not remove an ended answer's row in %s", self.place.key, exc_info=True)
            self._row = None


class InFlight:
    """The answers this process is writing now."""

    def __init__(self, sessions: Sessions, *, clock: Callable[[], datetime], instance: str = "") -> None:
        self.sessions = sessions
        self.instance = (instance or f"engine-{uuid.uuid4().hex[:12]}")[:64]  # the process's id
        self.clock = clock
        self._flights: set[Flight] = set()
        self._changed: asyncio.Event | None = None
        self.interrupting = False  # the grace period is over: what begins now is cut at once

    def __len__(self) -> int:
        return len(self._flights)

    def begin(self, place: Place) -> Flight:
        """Register the answer the current task writes into `place`."""
        task = asyncio.current_task()
        flight = Flight(self, place, task)
        self._flights.add(flight)
        if self.interrupting:
            flight.interrupt()
        return flight

    async def written(self) -> None:
        """Until every answer's latest message is recorded (the writes run in the background)."""
        writes = [flight._writing for flight in self._flights if flight._writing is not None]
        await asyncio.gather(*writes, return_exceptions=True)

    async def end(self, flight: Flight) -> None:
        try:
            await flight.end()
        finally:
            self._flights.discard(flight)
            if self._changed is not None:
                self._changed.set()

    async def idle(self, *, within: float) -> bool:
        """Wait until no answer is in flight; False if `within` seconds passed first."""
        try:
            async with asyncio.timeout(within):
                while self._flights:
                    self._changed = self._changed or asyncio.Event()
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            return False
        return True

    async def settle(self, grace: float, *, close_within: float = CLOSE_WITHIN_S) -> int:
        """Let the answers in flight finish for `grace` seconds; interrupt those still writing
        then, and wait up to `close_within` seconds for them to be closed. How many were cut."""
        if await self.idle(within=grace):
            return 0
        self.interrupting = True
        cut = [flight for flight in self._flights if not flight.finishing]
        for flight in cut:
            flight.interrupt()
        log.info("grace period over: closing %d answer(s) still in flight", len(cut))
        if not await self.idle(within=close_within):
            log.warning("%d answer(s) were still closing when the process stopped", len(self._flights))
        return len(cut)


async def close_orphans(
    sessions: Sessions, platforms: Mapping[str, Platform], *, live: Collection[str], note: str = INTERRUPTED
) -> int:
    """Close the answers left in progress by instances not in `live` (the instances alive now),
    on the platforms this process has; each is taken (its row deleted) before it is closed, so that
    it is closed once across instances. How many were closed."""
    closed = 0
    for row, instance, platform_name in await store.open_answers(sessions):
        platform = platforms.get(platform_name)
        if instance in live or platform is None:
            continue
        message = await store.take_open_answer(sessions, row)
        if message is None:
            continue  # another instance took it
        if not isinstance(platform, ClosesOrphans):
            continue  # nothing stays in progress there (the console's terminal is gone)
        try:
            await platform.close_orphan(message, note)
        except PlatformRateLimited:  # not now: left for the next sweep
            await store.add_open_answer(sessions, message, instance=instance, now=datetime.now(UTC))
            continue
        except PlatformError as exc:
            log.warning("could not close an answer left in progress in %s: %s", message.place.key, exc)
            continue
        closed += 1
    if closed:
        log.info("closed %d answer(s) left in progress by a process that is gone", closed)
    return closed
