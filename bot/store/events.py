"""What platforms and people send once: delivery ids (a redelivered event is answered once, across
instances) and feedback clicks on answers.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, func, insert
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from bot.db import Sessions
from bot.platform import Place
from bot.tables import Feedback, ProcessedEvent

__all__ = ["EVENT_RETENTION", "claim_event", "feedback_counts", "prune_events", "record_feedback"]

EVENT_RETENTION = timedelta(days=2)


async def claim_event(sessions: Sessions, *, platform: str, event_id: str, now: datetime) -> bool:
    """True the first time an event id is seen; False for a redelivery (on any instance)."""
    async with sessions() as session:
        try:
            await session.exec(
                insert(ProcessedEvent).values(platform=platform, event_id=event_id, received_at=now)
            )
            await session.commit()
        except IntegrityError:
            await session.rollback()
            return False
    return True


async def prune_events(sessions: Sessions, *, older_than: datetime) -> int:
    async with sessions() as session:
        result = await session.exec(
            delete(ProcessedEvent).where(col(ProcessedEvent.received_at) < older_than)
        )
        await session.commit()
    return int(result.rowcount or 0)


async def record_feedback(
    sessions: Sessions, place: Place, *, message_id: str, user_id: str, value: str, now: datetime
) -> None:
    async with sessions() as session:
        session.add(
            Feedback(
                platform=place.platform,
                workspace=place.workspace,
                channel=place.channel,
                message_id=message_id,
                user_id=user_id,
                value=value,
                created_at=now,
            )
        )
        await session.commit()


async def feedback_counts(sessions: Sessions, *, platform: str) -> dict[str, int]:
    async with sessions() as session:
        rows = (
            await session.exec(
                select(col(Feedback.value), func.count())
                .where(col(Feedback.platform) == platform)
                .group_by(col(Feedback.value))
            )
        ).all()
    return {value: int(count) for value, count in rows}
