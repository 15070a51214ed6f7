"""Digests: the digest schedules of every workspace (add, list, remove), a digest made now, and the
entry points of the `digest` command and the timer."""

from __future__ import annotations

import builtins
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, delete, func
from sqlmodel import col, select

from bot.db import Sessions
from bot.digests.command import answer
from bot.digests.compose import CHUNK_CHARS
from bot.digests.recurrence import Schedule, parse_schedule
from bot.digests.runs import READ_DEADLINE_S, DigestOutcome, Runs
from bot.errors import BadInput, PermissionDenied
from bot.grok import GrokClient
from bot.platform import Incoming, Place, Platform
from bot.quotas import Quotas
from bot.tables import DigestSchedule

log = logging.getLogger(__name__)

MAX_PER_WORKSPACE = 50


@dataclass(frozen=True)
class DigestInfo:
    id: int
    place: Place  # where it is posted
    channel: str  # the channel summarised
    schedule: Schedule
    next_run_at: datetime
    since: datetime | None  # the next run summarises messages from here on
    post_when_empty: bool
    created_by: str

    @property
    def description(self) -> str:
        return self.schedule.describe()


class Digests:
    """Digest schedules of every workspace and their runs, claimed slot by slot in the database."""

    def __init__(
        self,
        *,
        sessions: Sessions,
        grok: GrokClient,
        quotas: Quotas,
        platforms: Mapping[str, Platform],
        clock: Callable[[], datetime],
        instance_id: str,
        timezone: str = "UTC",
        model: str = "grok-4.3",
        lease: timedelta = timedelta(minutes=5),
        chunk_chars: int = CHUNK_CHARS,
        renew_every: float | None = None,
        deadline: float = READ_DEADLINE_S,
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self._timezone = timezone
        self._runs = Runs(
            sessions=sessions,
            grok=grok,
            quotas=quotas,
            platforms=platforms,
            clock=clock,
            instance_id=instance_id,
            model=model,
            lease=lease,
            chunk_chars=chunk_chars,
            renew_every=renew_every,
            deadline=deadline,
        )

    async def command(self, incoming: Incoming, platform: Platform, *, is_admin: bool) -> str:
        """Run `digest add|list|remove|now` for this incoming; return the text to answer with."""
        return await answer(self, incoming, is_admin=is_admin)

    async def tick(self) -> int:
        """Take over abandoned runs, then claim and run every due slot; returns how many ran."""
        return await self._runs.tick()

    # -- schedules --------------------------------------------------------------------------

    async def add(
        self,
        place: Place,
        *,
        schedule: str,
        channel: str | None,
        created_by: str,
        is_admin: bool = False,
        post_when_empty: bool = True,
    ) -> DigestInfo:
        """A new digest of `channel` (default: this one) posted in `place`'s channel on `schedule`."""
        channel = channel or place.channel
        self._may_read(place, channel, is_admin)
        now = self._clock()
        parsed = parse_schedule(schedule, default_timezone=self._timezone, now=now)
        first = parsed.next_after(now)
        assert first is not None  # compile_schedule refused schedules that never run
        async with self._sessions.begin() as session:
            count = await session.exec(
                select(func.count()).select_from(DigestSchedule).where(*_in_workspace(place))
            )
            if count.one() >= MAX_PER_WORKSPACE:
                raise BadInput(f"A workspace can have {MAX_PER_WORKSPACE} digests; remove one first.")
            row = DigestSchedule(
                platform=place.platform,
                workspace=place.workspace,
                channel=channel,
                post_channel=place.channel,
                cron_expr=parsed.cron,
                timezone=parsed.timezone,
                post_when_empty=post_when_empty,
                next_run_at=first,
                # The first digest covers one period before its slot, as every later one does.
                last_run_at=parsed.previous_before(first) or first - timedelta(days=1),
                created_by=created_by,
                created_at=now,
            )
            session.add(row)
            await session.flush()
            info = _info(row)
        log.info("digest %d added in %s by %s", info.id, place.key, created_by)
        return info

    async def list(self, place: Place) -> builtins.list[DigestInfo]:
        """The digests of `place`'s workspace, oldest first."""
        async with self._sessions() as session:
            rows = await session.exec(
                select(DigestSchedule).where(*_in_workspace(place)).order_by(col(DigestSchedule.id))
            )
            return [_info(row) for row in rows.all()]

    async def remove(self, place: Place, digest_id: int, *, by: str, is_admin: bool = False) -> bool:
        """Delete a digest of this workspace (its creator or an admin); False when there is none."""
        async with self._sessions.begin() as session:
            row = (
                await session.exec(
                    select(DigestSchedule).where(*_in_workspace(place), col(DigestSchedule.id) == digest_id)
                )
            ).one_or_none()
            if row is None:
                return False
            if row.created_by != by and not is_admin:
                raise PermissionDenied("Only the digest's creator or an admin can remove it.")
            await session.exec(delete(DigestSchedule).where(col(DigestSchedule.id) == digest_id))
        return True

    async def run_now(
        self, place: Place, channel: str | None = None, *, is_admin: bool = False
    ) -> DigestOutcome:
        """A digest of the last 24 hours of `channel` (default: this one), posted in `place` now."""
        channel = channel or place.channel
        self._may_read(place, channel, is_admin)
        until = self._clock()
        since = until - timedelta(days=1)
        source = Place(place.platform, place.workspace, channel)
        key = f"digest-now:{place.platform}:{place.workspace}:{channel}:{until.isoformat()}"
        return await self._runs.run(
            source=source,
            target=place,
            since=since,
            until=until,
            timezone=self._timezone,
            post_when_empty=True,
            charge_key=key,
            run=None,
        )

    def _may_read(self, place: Place, channel: str, is_admin: bool) -> None:
        # Another channel may be private: only admins may have it summarised somewhere else.
        if channel != place.channel and not is_admin:
            raise PermissionDenied("Only admins can digest another channel; run it in that channel.")


def _in_workspace(place: Place) -> builtins.list[ColumnElement[bool]]:
    return [col(DigestSchedule.platform) == place.platform, col(DigestSchedule.workspace) == place.workspace]


def _info(row: DigestSchedule) -> DigestInfo:
    assert row.id is not None
    return DigestInfo(
        id=row.id,
        place=Place(row.platform, row.workspace, row.post_channel),
        channel=row.channel,
        schedule=Schedule(row.cron_expr, row.timezone),
        next_run_at=row.next_run_at,
        since=row.last_run_at,
        post_when_empty=row.post_when_empty,
        created_by=row.created_by,
    )
