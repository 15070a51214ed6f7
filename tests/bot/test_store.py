"""bot/store on SQLite and PostgreSQL: conversations are created once, however many ask at once, and a
turn's context is one call that reads in one session and writes only for a new conversation."""

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
from bot.store.conversations import conversation_for
from bot.store.places import set_system_prompt
from bot.tables import Conversation

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
PLACE = Place("slack", "T1", "C1", "1700000000.000100")


async def test_a_conversation_is_created_once_under_a_crowd(sessions: Sessions) -> None:
    refs = await asyncio.gather(*(conversation_for(sessions, PLACE, now=NOW) for _ in range(20)))
    assert len({(r.id, r.grok_conv_id) for r in refs}) == 1
    async with sessions() as session:
        count = (await session.exec(select(func.count()).select_from(Conversation))).one()
    assert count == 1


async def test_an_existing_conversation_is_found_without_writing(
    sessions: Sessions, engine: AsyncEngine
) -> None:
    first = await conversation_for(sessions, PLACE, now=NOW)
    statements: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement.split()[0].upper())

    event.listen(engine.sync_engine, "before_cursor_execute", note)
    try:
        again = await conversation_for(sessions, PLACE, now=NOW)
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", note)
    assert (again.id, again.grok_conv_id) == (first.id, first.grok_conv_id)
    assert statements == ["SELECT"]
    other = await conversation_for(sessions, Place("slack", "T1", "C1", "other"), now=NOW)
    assert other.id != first.id


class Statements:
    """The first word of every SQL statement run, and how many connections were checked out."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.words: list[str] = []
        self.checkouts = 0
        self._engine = engine

    def __enter__(self) -> Statements:
        event.listen(self._engine.sync_engine, "before_cursor_execute", self._note)
        event.listen(self._engine.sync_engine.pool, "checkout", self._checkout)
        return self

    def __exit__(self, *_exc: object) -> None:
        event.remove(self._engine.sync_engine, "before_cursor_execute", self._note)
        event.remove(self._engine.sync_engine.pool, "checkout", self._checkout)

    def _note(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        self.words.append(statement.split()[0].upper())

    def _checkout(self, *_args: Any) -> None:
        self.checkouts += 1


async def test_a_turns_context_is_one_call_with_its_history_and_settings(sessions: Sessions) -> None:
    asked = store.HistoryMessage(role="user", text="hi", author_name="ana")
    conversations = store.Conversations(sessions, clock=lambda: NOW)
    first = await conversations.turn_context(PLACE)
    assert first.history == [] and first.settings == store.PlaceSettings()
    await store.add_turns(sessions, first.conversation.id, [asked], now=NOW)
    await set_system_prompt(sessions, PLACE, "Be brief.", whole_workspace=True, by="U0", now=NOW)
    # Another instance (nothing cached) finds the same conversation, its history and the settings.
    context = await store.Conversations(sessions, clock=lambda: NOW).turn_context(PLACE)
    assert context.conversation == first.conversation
    assert [(m.role, m.text, m.author_name) for m in context.history] == [("user", "hi", "ana")]
    assert context.settings.system_prompt == "Be brief."


async def test_a_new_conversation_costs_one_write_and_reads_no_history(
    sessions: Sessions, engine: AsyncEngine
) -> None:
    conversations = store.Conversations(sessions, clock=lambda: NOW)
    with Statements(engine) as new:
        await conversations.turn_context(PLACE)
    assert sorted(new.words) == ["INSERT", "SELECT", "SELECT"]  # find, settings; create


async def test_an_existing_conversation_is_read_in_one_session_without_writing(
    sessions: Sessions, engine: AsyncEngine
) -> None:
    await conversation_for(sessions, PLACE, now=NOW)
    seconds = [0.0]
    conversations = store.Conversations(sessions, clock=lambda: NOW, monotonic=lambda: seconds[0])
    with Statements(engine) as unknown:
        await conversations.turn_context(PLACE)
    assert unknown.words == ["SELECT", "SELECT", "SELECT"]  # conversation, history, settings
    assert unknown.checkouts == 1
    with Statements(engine) as known:
        await conversations.turn_context(PLACE.in_thread("another thread"))
        await conversations.turn_context(PLACE)
    # The settings are the channel's and still fresh: a new thread there looks for its conversation
    # and creates it; the known conversation reads only its history.
    assert known.words == ["SELECT", "INSERT", "SELECT"]
    seconds[0] += 61
    with Statements(engine) as later:
        await conversations.turn_context(PLACE)
    assert later.words == ["SELECT", "SELECT"]  # history, and the settings once a minute
    assert later.checkouts == 1


async def test_a_channels_settings_win_over_the_workspaces(sessions: Sessions) -> None:
    other = Place("slack", "T1", "C2", "t")
    await set_system_prompt(sessions, PLACE, "Workspace.", whole_workspace=True, by="U0", now=NOW)
    await set_system_prompt(sessions, other, "Channel.", whole_workspace=False, by="U0", now=NOW)
    conversations = store.Conversations(sessions, clock=lambda: NOW)
    assert (await conversations.turn_context(other)).settings.system_prompt == "Channel."
    assert (await conversations.turn_context(PLACE)).settings.system_prompt == "Workspace."
    elsewhere = Place("slack", "T2", "C1", "t")
    assert (await conversations.turn_context(elsewhere)).settings == store.PlaceSettings()
