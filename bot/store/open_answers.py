"""Answers in progress (issue 18): one row per answer being written, with where it shows, so that an
answer a crashed process left in progress can be closed by the next one. One insert when the
answer's first message exists, one delete when it ends; an update only when it moves to another
message (a long answer split, a blocked message left behind)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, insert, update
from sqlmodel import col, select

from bot.db import Sessions
from bot.platform import OpenMessage, Place
from bot.tables import OpenAnswer

__all__ = ["add_open_answer", "move_open_answer", "open_answers", "remove_open_answer", "take_open_answer"]


async def add_open_answer(sessions: Sessions, message: OpenMessage, *, instance: str, now: datetime) -> int:
    """Record an answer in progress; its row id."""
    place = message.place
    async with sessions.begin() as session:
        result = await session.exec(
            insert(OpenAnswer)
            .values(
                instance=instance[:64],
                platform=place.platform,
                workspace=place.workspace,
                channel=place.channel,
                thread=place.thread,
                message_id=message.message_id,
                stream=message.stream,
                started_at=now,
            )
            .returning(col(OpenAnswer.id))
        )
        return int(result.scalar_one())


async def move_open_answer(sessions: Sessions, row: int, message: OpenMessage) -> None:
    """The answer goes on in another message (or its stream ended and it is edited now)."""
    async with sessions.begin() as session:
        await session.exec(
            update(OpenAnswer)
            .where(col(OpenAnswer.id) == row)
            .values(message_id=message.message_id, stream=message.stream)
        )


async def remove_open_answer(sessions: Sessions, row: int) -> None:
    """The answer ended (delivered, failed, stopped or closed with a note)."""
    async with sessions.begin() as session:
        await session.exec(delete(OpenAnswer).where(col(OpenAnswer.id) == row))


async def open_answers(sessions: Sessions) -> Sequence[tuple[int, str, str]]:
    """(row id, instance, platform) of every answer in progress, on any instance."""
    query = select(col(OpenAnswer.id), col(OpenAnswer.instance), col(OpenAnswer.platform))
    async with sessions() as session:
        rows = (await session.exec(query)).all()
    return [(int(row or 0), str(instance), str(platform)) for row, instance, platform in rows]


async def take_open_answer(sessions: Sessions, row: int) -> OpenMessage | None:
    """Claim an answer left in progress for closing: its row deleted by this call, so that of two
    instances sweeping at once only one closes it. None when another took it first."""
    async with sessions.begin() as session:
        found = (await session.exec(select(OpenAnswer).where(col(OpenAnswer.id) == row))).first()
        if found is None:
            return None
        result = await session.exec(delete(OpenAnswer).where(col(OpenAnswer.id) == row))
        if not result.rowcount:
            return None
    place = Place(found.platform, found.workspace, found.channel, found.thread)
    return OpenMessage(place, found.message_id, found.stream)
