"""bot/store.py on SQLite and PostgreSQL: conversations are created once, however many ask at once."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import func, select

from bot import store
from bot.db import Sessions
from bot.platform import Place
from bot.tables import Conversation

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
PLACE = Place("slack", "T1", "C1", "1700000000.000100")


async def test_a_conversation_is_created_once_under_a_crowd(sessions: Sessions) -> None:
    refs = await asyncio.gather(*(store.conversation_for(sessions, PLACE, now=NOW) for _ in range(20)))
    assert len({(r.id, r.grok_conv_id) for r in refs}) == 1
    async with sessions() as session:
        count = (await session.exec(select(func.count()).select_from(Conversation))).one()
    assert count == 1


async def test_an_existing_conversation_is_found_without_writing(
    sessions: Sessions, engine: AsyncEngine
) -> None:
    first = await store.conversation_for(sessions, PLACE, now=NOW)
    statements: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement.split()[0].upper())

    event.listen(engine.sync_engine, "before_cursor_execute", note)
    try:
        again = await store.conversation_for(sessions, PLACE, now=NOW)
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", note)
    assert (again.id, again.grok_conv_id) == (first.id, first.grok_conv_id)
    assert statements == ["SELECT"]
    other = await store.conversation_for(sessions, Place("slack", "T1", "C1", "other"), now=NOW)
    assert other.id != first.id
