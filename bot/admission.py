"""Arrival order per place: what people say in one channel or thread is taken up in the order it was
said, whatever each message waits for on the way (its first-delivery claim, its conversation's
lookup, an attached image's download).

The engine takes a ticket before its first await and waits for its turn just before it queues on the
conversation's lock (which is first-come, first-served): a question with a slow download can no
longer be overtaken by the one said after it and answered without it in its history.
"""

from __future__ import annotations

import asyncio
from collections import deque
from types import TracebackType

__all__ = ["Admission", "Ticket"]


class Ticket:
    """One message's place in its place's line. Its successor may go once it is admitted (it holds
    the conversation's lock, or has finished); `with` admits it on the way out, whatever happened."""

    def __init__(self, line: _Line) -> None:
        self._line = line
        self._admitted = False

    async def turn(self) -> None:
        """Wait until every ticket taken before this one in its place is admitted."""
        await self._line.wait_for(self)

    def admit(self) -> None:
        """Let the next ticket of the place go (idempotent)."""
        if not self._admitted:
            self._admitted = True
            self._line.admitted(self)

    def __enter__(self) -> Ticket:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.admit()


class _Line:
    """The tickets of one place not yet admitted, in arrival order."""

    def __init__(self, admission: Admission, key: str) -> None:
        self._admission = admission
        self._key = key
        self._waiting: deque[Ticket] = deque()
        self._moved = asyncio.Event()

    def take(self) -> Ticket:
        ticket = Ticket(self)
        self._waiting.append(ticket)
        return ticket

    async def wait_for(self, ticket: Ticket) -> None:
        while self._waiting and self._waiting[0] is not ticket:
            self._moved.clear()
            await self._moved.wait()

    def admitted(self, ticket: Ticket) -> None:
        self._waiting.remove(ticket)
        self._moved.set()
        if not self._waiting:
            self._admission.done(self._key)


class Admission:
    """The lines of every place with a message in progress; a place's line is dropped when empty."""

    def __init__(self) -> None:
        self._lines: dict[str, _Line] = {}

    def take(self, key: str) -> Ticket:
        """A ticket at the end of `key`'s line (synchronous: take it before the first await)."""
        line = self._lines.get(key)
        if line is None:
            line = self._lines[key] = _Line(self, key)
        return line.take()

    def done(self, key: str) -> None:
        self._lines.pop(key, None)

    def __len__(self) -> int:
        """Places with a message in progress."""
        return len(self._lines)
