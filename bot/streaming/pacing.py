"""When the next interim edit of a streamed answer may go: after new text arrived, and no sooner
than the edit interval after the current message's last edit.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

MIN_LOOK_S = 0.05  # a pacer that looks for text itself looks at least this far apart


class Pacer:
    """The timing of one answer's interim edits. With `looks`, text is only appended when the writer
    asks its source for it, so the pacer wakes once per interval instead of waiting to be nudged."""

    def __init__(self, interval: float, clock: Callable[[], float], *, looks: bool) -> None:
        self.interval = interval
        self._clock = clock
        self._looks = looks
        self._last_edit = float("-inf")  # of the current message
        self._wake = asyncio.Event()  # new text arrived (or an edit is to be retried)
        self._closing = asyncio.Event()  # the answer ends: stop waiting at once

    @property
    def closed(self) -> bool:
        return self._closing.is_set()

    def nudge(self) -> None:
        self._wake.set()

    def close(self) -> None:
        self._closing.set()
        self._wake.set()

    def edited(self) -> None:
        self._last_edit = self._clock()

    def new_message(self) -> None:
        """A new message may be edited at once."""
        self._last_edit = float("-inf")

    async def turn(self) -> bool:
        """Wait until an interim edit may go; False once the answer is closing."""
        if self.closed:
            return False
        if self._looks:  # gathered text is appended only when asked for: ask once per interval
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(self.interval, MIN_LOOK_S)):
                    await self._wake.wait()
        else:
            await self._wake.wait()
        self._wake.clear()
        if self.closed:
            return False
        wait = self._last_edit + self.interval - self._clock()
        if wait > 0:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._closing.wait()
        return not self.closed
