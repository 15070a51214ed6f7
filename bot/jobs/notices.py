"""Notices between instances on PostgreSQL: `announce` sends a NOTIFY with the transaction that adds
work, and Notices keeps one LISTEN connection per process whose notices ring the claimers' alarms.
SQLite has neither (one process per file); the alarms' slow safety poll covers a lost notice."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import asyncpg
from sqlalchemy import func
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

log = logging.getLogger(__name__)

DEFERRED = "grokbot_deferred"  # a deferred request was added
DIGESTS = "grokbot_digests"  # a digest schedule was added or removed

# What may end a listening connection: the database gone, or the driver's own errors (the LISTEN
# runs on asyncpg's connection directly, so its errors are not wrapped by SQLAlchemy).
_LOST = (SQLAlchemyError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError)


async def announce(session: AsyncSession, channel: str, *, sender: str = "") -> None:
    """NOTIFY `channel` when the session's transaction commits (PostgreSQL; nothing elsewhere).
    `sender` (an instance id) lets that instance ignore its own notice."""
    if session.get_bind().dialect.name == "postgresql":
        await session.exec(select(func.pg_notify(channel, sender[:64])))


class Notices:
    """The LISTEN side: one connection taken from the engine's pool for the process's life, never
    given back (a connection with LISTENs is closed, not reused). Each notice from another instance
    calls its channel's listeners. A lost connection is opened again after `retry` seconds, and
    then every listener is called, for the notices sent while nobody listened."""

    def __init__(self, engine: AsyncEngine, *, instance_id: str, retry: float = 5.0) -> None:
        self._engine = engine
        self._me = instance_id[:64]
        self._retry = retry
        self._listeners: dict[str, list[Callable[[], None]]] = {}
        self._listening = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def on(self, channel: str, listener: Callable[[], None]) -> None:
        """Call `listener` on each notice of `channel` (add listeners before `start`)."""
        self._listeners.setdefault(channel, []).append(listener)

    def start(self) -> None:
        """Listen in the background: on PostgreSQL; elsewhere there is nothing to hear."""
        if self._engine.dialect.name != "postgresql":
            self._listening.set()
            return
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._keep_listening(), name="notices")

    async def listening(self) -> None:
        """Return once the LISTEN is in place (at once where there is nothing to listen to)."""
        await self._listening.wait()

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.wait({task})

    async def _keep_listening(self) -> None:
        while True:
            try:
                async with self._engine.connect() as connection:
                    await self._listen(connection)
            except _LOST as exc:
                log.warning(
                    "notices: cannot listen (%s); trying again in %g s", type(exc).__name__, self._retry
                )
            self._listening.clear()
            await asyncio.sleep(self._retry)

    async def _listen(self, connection: AsyncConnection) -> None:
        """LISTEN on every channel until the connection is lost; then it is closed for good."""
        lost = asyncio.Event()
        try:
            driver = (await connection.get_raw_connection()).driver_connection
            assert driver is not None  # a checked-out connection has its driver's
            driver.add_termination_listener(lambda _connection: lost.set())
            for channel in self._listeners:
                await driver.add_listener(channel, self._heard)
            self._listening.set()
            self._call_everyone()
            await lost.wait()
            log.warning("notices: the listening connection was lost; listening again in %g s", self._retry)
        finally:
            await connection.invalidate()

    def _heard(self, _connection: Any, _pid: int, channel: str, sender: str) -> None:
        if sender != self._me:
            for listener in self._listeners.get(channel, ()):
                listener()

    def _call_everyone(self) -> None:
        for listeners in self._listeners.values():
            for listener in listeners:
                listener()
