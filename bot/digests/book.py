"""Digests, the digest book of every workspace: schedules added, listed and removed, a digest made
now, and the entry points of the `digest` command and of the timer."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timedelta

from bot.db import Sessions
from bot.digests.command import answer
from bot.digests.compose import CHUNK_CHARS
from bot.digests.making import READ_DEADLINE_S, DigestJob, DigestMaker, DigestOutcome, OnDemand
from bot.digests.recurrence import MIN_INTERVAL, parse_schedule
from bot.digests.runs import LeaseTerms, Runs
from bot.digests.store import DigestInfo, DigestStore
from bot.errors import BadInput, PermissionDenied
from bot.grok import GrokClient
from bot.jobs import Bell
from bot.platform import Incoming, Place, Platform
from bot.quotas import Quotas

log = logging.getLogger(__name__)

MAX_PER_WORKSPACE = 50


class Digests:
    """Digest schedules of every workspace and their runs, claimed slot by slot in the database.

    `min_interval` is the least time between two runs of a schedule (GROKBOT_DIGEST_MIN_INTERVAL_S);
    `store` replaces the SQL (default: a DigestStore on `sessions`); `sleep` paces lease renewals.
    `changed` rings when a schedule is added or removed (the timer listens)."""

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
        min_interval: timedelta = MIN_INTERVAL,
        lease: timedelta = timedelta(minutes=5),
        chunk_chars: int = CHUNK_CHARS,
        renew_every: float | None = None,
        deadline: float = READ_DEADLINE_S,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        store: DigestStore | None = None,
    ) -> None:
        self._store = store or DigestStore(sessions, instance=instance_id[:64])
        self._clock = clock
        self._timezone = timezone
        self._min_interval = min_interval
        self.changed = Bell()
        self._maker = DigestMaker(
            grok=grok,
            quotas=quotas,
            platforms=platforms,
            clock=clock,
            model=model,
            chunk_chars=chunk_chars,
            deadline=deadline,
        )
        every = lease.total_seconds() / 3 if renew_every is None else renew_every
        terms = LeaseTerms(instance_id[:64], lease, every, clock, sleep)
        self._runs = Runs(store=self._store, maker=self._maker, platforms=platforms, terms=terms)

    async def command(self, incoming: Incoming, platform: Platform, *, is_admin: bool) -> str:
        """Run `digest add|list|remove|now` for this incoming; return the text to answer with."""
        return await answer(self, incoming, is_admin=is_admin)

    async def tick(self) -> int:
        """Take over abandoned runs, then claim and run every due slot; returns how many ran."""
        return await self._runs.tick()

    async def next_due(self) -> datetime | None:
        """When the next slot, or the lease of a run left unfinished, comes due (None: never)."""
        return await self._runs.next_due()

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
        parsed = parse_schedule(
            schedule, default_timezone=self._timezone, now=now, min_interval=self._min_interval
        )
        first = parsed.next_after(now)
        assert first is not None  # compile_schedule refused schedules that never run
        # The first digest covers one period before its slot, as every later one does.
        since = parsed.previous_before(first) or first - timedelta(days=1)
        draft = DigestInfo(0, place, channel, parsed, first, since, post_when_empty, created_by)
        info = await self._store.add(draft, created_at=now, at_most=MAX_PER_WORKSPACE)
        if info is None:
            raise BadInput(f"A workspace can have {MAX_PER_WORKSPACE} digests; remove one first.")
        log.info("digest %d added in %s by %s", info.id, place.key, created_by)
        self.changed.ring()
        return info

    async def workspace_digests(self, place: Place) -> list[DigestInfo]:
        """The digests of `place`'s workspace, oldest first."""
        return await self._store.in_workspace(place)

    async def remove(self, place: Place, digest_id: int, *, by: str, is_admin: bool = False) -> bool:
        """Delete a digest of this workspace (its creator or an admin); False when there is none."""
        info = await self._store.find(place, digest_id)
        if info is None:
            return False
        if info.created_by != by and not is_admin:
            raise PermissionDenied("Only the digest's creator or an admin can remove it.")
        if not await self._store.delete(digest_id):
            return False
        self.changed.ring()
        return True

    async def run_now(
        self, place: Place, channel: str | None = None, *, is_admin: bool = False
    ) -> DigestOutcome:
        """A digest of the last 24 hours of `channel` (default: this one), posted in `place` now."""
        channel = channel or place.channel
        self._may_read(place, channel, is_admin)
        until = self._clock()
        job = DigestJob(
            source=Place(place.platform, place.workspace, channel),
            target=place,
            since=until - timedelta(days=1),
            until=until,
            timezone=self._timezone,
            post_when_empty=True,
            charge_key=f"digest-now:{place.platform}:{place.workspace}:{channel}:{until.isoformat()}",
        )
        return await self._maker.make(job, OnDemand())

    def _may_read(self, place: Place, channel: str, is_admin: bool) -> None:
        # Another channel may be private: only admins may have it summarised somewhere else.
        if channel != place.channel and not is_admin:
            raise PermissionDenied("Only admins can digest another channel; run it in that channel.")
