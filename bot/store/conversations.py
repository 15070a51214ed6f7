"""Conversations, their history (the turn table) and the platform messages linked to them.

Functions take a session factory (or a session) and return plain values; table rows never leave
bot.store. The statements every answer runs are built once, with bound parameters.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, fields
from datetime import datetime

from sqlalchemy import RowMapping, bindparam, delete, insert, update
from sqlalchemy import select as sa_select
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.db import Sessions
from bot.grok import Completion, Source, Usage
from bot.platform import Place
from bot.tables import Conversation, MessageRef, Turn, table_of

__all__ = [
    "ConversationRef",
    "HistoryMessage",
    "Links",
    "add_turns",
    "assistant_turn",
    "conversation_for",
    "conversation_of_message",
    "create_conversation",
    "find_conversation",
    "forget_conversation",
    "link_messages",
    "read_conversation",
    "read_history",
    "recent_turns",
]

HISTORY_LIMIT = 200  # the newest messages read for a turn; trimming to the context window follows
TURNS = table_of(Turn)
CONVERSATIONS = table_of(Conversation)
_FIND_CONVERSATION = select(col(Conversation.id), col(Conversation.grok_conv_id)).where(
    col(Conversation.platform) == bindparam("w_platform"),
    col(Conversation.workspace) == bindparam("w_workspace"),
    col(Conversation.channel) == bindparam("w_channel"),
    col(Conversation.thread) == bindparam("w_thread"),
)
_CREATE_CONVERSATION = {
    name: dialect.insert(CONVERSATIONS)
    .on_conflict_do_nothing()
    .returning(CONVERSATIONS.c.id, CONVERSATIONS.c.grok_conv_id)
    for name, dialect in (("sqlite", sqlite), ("postgresql", postgresql))
}
_LINK = {
    name: dialect.insert(table_of(MessageRef)).on_conflict_do_nothing()
    for name, dialect in (("sqlite", sqlite), ("postgresql", postgresql))
}
_ADD_TURNS = insert(TURNS)
_TOUCH = (
    update(CONVERSATIONS).where(CONVERSATIONS.c.id == bindparam("w_id")).values(updated_at=bindparam("w_now"))
)
_RECENT_TURNS = (
    sa_select(TURNS)
    .where(TURNS.c.conversation_id == bindparam("w_id"))
    .order_by(TURNS.c.id.desc())
    .limit(bindparam("w_limit"))
)


@dataclass(frozen=True)
class ConversationRef:
    """A conversation: its row id, its place, and the x-grok-conv-id its requests carry."""

    id: int
    place: Place
    grok_conv_id: str


@dataclass(frozen=True)
class HistoryMessage:
    """One message of a conversation's stored history (a row of the turn table), as a value."""

    role: str  # user | assistant
    text: str
    author_id: str = ""
    author_name: str = ""
    image_count: int = 0
    model: str = ""
    fingerprint: str = ""
    xai_request_id: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0
    cached_tokens: int = 0
    cost_ticks: int = 0
    finish_reason: str = ""
    created_at: datetime | None = None
    sources: tuple[Source, ...] = ()  # an answer's sources, as shown after it


async def conversation_for(sessions: Sessions, place: Place, *, now: datetime) -> ConversationRef:
    """The conversation at `place`, created on first use (race-safe across instances). An existing
    one costs one read and no write; a new one an INSERT … RETURNING, and a read again only for the
    loser of a race to create it."""
    found = await find_conversation(sessions, place)
    if found is not None:
        return found
    return await create_conversation(sessions, place, now=now)


async def create_conversation(sessions: Sessions, place: Place, *, now: datetime) -> ConversationRef:
    """A new conversation at `place`, or the one another instance created there meanwhile."""
    row = {
        "platform": place.platform,
        "workspace": place.workspace,
        "channel": place.channel,
        "thread": place.thread,
        "grok_conv_id": str(uuid.uuid4()),
        "created_at": now,
        "updated_at": now,
    }
    async with sessions() as session:
        create = _CREATE_CONVERSATION[session.get_bind().dialect.name]
        created = (await session.exec(create, params=row)).one_or_none()
        await session.commit()
    if created is None:  # another instance created it meanwhile
        found = await find_conversation(sessions, place)
        assert found is not None
        return found
    return ConversationRef(id=created[0], place=place, grok_conv_id=created[1])


async def find_conversation(sessions: Sessions, place: Place) -> ConversationRef | None:
    async with sessions() as session:
        return await read_conversation(session, place)


async def read_conversation(session: AsyncSession, place: Place) -> ConversationRef | None:
    """The conversation at `place`, if any, read in `session` (one SELECT, no write)."""
    params = {
        "w_platform": place.platform,
        "w_workspace": place.workspace,
        "w_channel": place.channel,
        "w_thread": place.thread,
    }
    row = (await session.exec(_FIND_CONVERSATION, params=params)).one_or_none()
    if row is None or row[0] is None:
        return None
    return ConversationRef(row[0], place, row[1])


async def conversation_of_message(
    sessions: Sessions, *, platform: str, channel: str, message_id: str
) -> ConversationRef | None:
    """The conversation a platform message belongs to (a reply to it continues that one)."""
    async with sessions() as session:
        row = (
            await session.exec(
                select(Conversation)
                .join(MessageRef, col(MessageRef.conversation_id) == col(Conversation.id))
                .where(
                    col(MessageRef.platform) == platform,
                    col(MessageRef.channel) == channel,
                    col(MessageRef.message_id) == message_id,
                )
            )
        ).one_or_none()
    if row is None or row.id is None:
        return None
    place = Place(row.platform, row.workspace, row.channel, row.thread)
    return ConversationRef(row.id, place, row.grok_conv_id)


async def link_messages(
    sessions: Sessions,
    conversation_id: int,
    *,
    platform: str,
    channel: str,
    message_ids: list[str],
    now: datetime,
) -> None:
    async with sessions.begin() as session:
        await _link(session, conversation_id, Links(platform, channel, tuple(message_ids)), now)


def assistant_turn(completion: Completion, *, model: str, usage: Usage, cost_ticks: int) -> HistoryMessage:
    """The assistant's turn for a completion, with its model, fingerprint, tokens and cost."""
    return HistoryMessage(
        role="assistant",
        text=completion.text,
        model=completion.model or model,
        fingerprint=completion.fingerprint,
        xai_request_id=completion.id,
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        reasoning_tokens=usage.reasoning_tokens,
        cached_tokens=usage.cached_tokens,
        cost_ticks=cost_ticks,
        finish_reason=completion.finish_reason,
        sources=completion.sources,
    )


_COLUMNS = tuple(f.name for f in fields(HistoryMessage))  # each a column of the turn table


@dataclass(frozen=True)
class Links:
    """Platform messages to attach to a conversation (so replies to them continue it)."""

    platform: str
    channel: str
    message_ids: tuple[str, ...]


async def add_turns(
    sessions: Sessions,
    conversation_id: int,
    turns: list[HistoryMessage],
    *,
    now: datetime,
    links: Links | None = None,
) -> None:
    """Append messages to the history in order (and link messages), in one transaction."""
    rows = [_row(message, conversation_id, now) for message in turns]
    async with sessions.begin() as session:
        if rows:
            await session.exec(_ADD_TURNS, params=rows)
        if links is not None:
            await _link(session, conversation_id, links, now)
        await session.exec(_TOUCH, params={"w_id": conversation_id, "w_now": now})


def _row(message: HistoryMessage, conversation_id: int, now: datetime) -> dict[str, object]:
    row = {name: getattr(message, name) for name in _COLUMNS}
    row.update(
        conversation_id=conversation_id,
        created_at=message.created_at or now,
        sources=_sources_json(message.sources),
    )
    return row


def _sources_json(sources: tuple[Source, ...]) -> str | None:
    """The sources column: JSON, compact; titles only where known."""
    if not sources:
        return None
    listed = [{"url": s.url, **({"title": s.title} if s.title else {})} for s in sources]
    return json.dumps(listed, ensure_ascii=False, separators=(",", ":"))


def _sources_of(raw: object) -> tuple[Source, ...]:
    if not isinstance(raw, str) or not raw:
        return ()
    listed = json.loads(raw)
    return tuple(Source(str(s["url"]), s.get("title")) for s in listed if isinstance(s, dict) and "url" in s)


def _message(mapping: RowMapping) -> HistoryMessage:
    values = {name: mapping[name] for name in _COLUMNS}
    values["sources"] = _sources_of(values["sources"])
    return HistoryMessage(**values)


async def _link(session: AsyncSession, conversation_id: int, links: Links, now: datetime) -> None:
    ids = [m for m in links.message_ids if m]
    if not ids:
        return
    values = [
        {
            "platform": links.platform,
            "channel": links.channel,
            "message_id": message_id,
            "conversation_id": conversation_id,
            "created_at": now,
        }
        for message_id in ids
    ]
    await session.exec(_LINK[session.get_bind().dialect.name], params=values)


async def recent_turns(
    sessions: Sessions, conversation_id: int, *, limit: int = HISTORY_LIMIT
) -> list[HistoryMessage]:
    """The newest `limit` messages of a conversation, oldest first."""
    async with sessions() as session:
        return await read_history(session, conversation_id, limit=limit)


async def read_history(
    session: AsyncSession, conversation_id: int, *, limit: int = HISTORY_LIMIT
) -> list[HistoryMessage]:
    """`recent_turns`, read in `session` (one SELECT)."""
    connection = await session.connection()  # a Core select: rows, not ORM objects
    rows = (await connection.execute(_RECENT_TURNS, {"w_id": conversation_id, "w_limit": limit})).all()
    return [_message(r._mapping) for r in reversed(rows)]


async def forget_conversation(sessions: Sessions, place: Place) -> int:
    """Delete the turns of the conversation at `place` (reset); returns how many were deleted."""
    ref = await find_conversation(sessions, place)
    if ref is None:
        return 0
    async with sessions() as session:
        result = await session.exec(delete(Turn).where(col(Turn.conversation_id) == ref.id))
        await session.commit()
    return int(result.rowcount or 0)
