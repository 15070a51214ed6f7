"""xAI's refusals as admins see them: counted per hour for the overview, and told to the admins
named in GROKBOT_ADMINS by direct message, at most once an hour however many instances run.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta

from sqlalchemy import update
from sqlmodel import col

from bot.db import Sessions, conflict_insert
from bot.errors import GrokError, GrokOutOfCredits, GrokRateLimited, PlatformError
from bot.platform import Platform
from bot.settings import Settings
from bot.tables import AdminAlert, XaiSignal

log = logging.getLogger(__name__)

ALERT_INTERVAL = timedelta(hours=1)
CREDITS = "credits"
RATE_LIMITED = "rate_limited"
NEVER = datetime(2000, 1, 1, tzinfo=UTC)


def alert_text(public_url: str | None) -> str:
    where = (
        f"Overview: {public_url}/admin/"
        if public_url
        else "Set GROKBOT_PUBLIC_URL to get a link to the admin pages here."
    )
    return (
        "⚠️ xAI refused a request: the team behind grokbot's API key is out of credits or reached "
        "its spending limit. People asking Grok are told so, and grokbot waits a minute after each "
        f"refusal before it asks xAI again. Top up or raise the limit in the xAI console. {where}"
    )


class XaiWatch:
    """The Grok client's observer (bot.grok.Observer): counts refusals, alerts admins of credits."""

    def __init__(
        self,
        sessions: Sessions,
        settings: Settings,
        *,
        platforms: Mapping[str, Platform],
        clock: Callable[[], datetime],
    ) -> None:
        self._sessions = sessions
        self._settings = settings
        self._platforms = platforms  # filled as adapters start
        self._clock = clock
        self._tasks: set[asyncio.Task[int]] = set()

    async def refused(self, error: GrokError) -> None:
        if isinstance(error, GrokOutOfCredits):
            await self._count(CREDITS)
            # The user's answer does not wait for the admins' messages.
            task = asyncio.create_task(self.alert())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        elif isinstance(error, GrokRateLimited):
            await self._count(RATE_LIMITED)

    async def _count(self, kind: str) -> None:
        now = self._clock()
        hour = now.replace(minute=0, second=0, microsecond=0)
        async with self._sessions.begin() as session:
            insert = conflict_insert(session, XaiSignal).values(kind=kind, hour=hour, count=1, last_at=now)
            await (await session.connection()).execute(
                insert.on_conflict_do_update(
                    index_elements=["kind", "hour"],
                    set_={"count": XaiSignal.count + 1, "last_at": now},
                )
            )

    async def alert(self) -> int:
        """Tell every admin of GROKBOT_ADMINS, if no instance did within the hour; how many were told."""
        if not await self._claim(CREDITS):
            return 0
        text = alert_text(self._settings.grokbot_public_url)
        told = 0
        for admin in self._settings.grokbot_admins:
            platform_name, _, user_id = admin.partition(":")
            platform = self._platforms.get(platform_name)
            if platform is None:
                continue
            try:
                await platform.direct_message(user_id, text)
                told += 1
            except PlatformError as exc:
                log.warning("could not alert admin %s: %s", admin, exc)
        log.warning("xAI credits refusal: %d admins alerted", told)
        return told

    async def _claim(self, kind: str) -> bool:
        """Compare-and-set on the kind's last alert time: one instance wins each hour."""
        now = self._clock()
        async with self._sessions.begin() as session:
            seed = conflict_insert(session, AdminAlert).values(kind=kind, sent_at=NEVER)
            await (await session.connection()).execute(seed.on_conflict_do_nothing(index_elements=["kind"]))
            claimed = await (await session.connection()).execute(
                update(AdminAlert)
                .where(col(AdminAlert.kind) == kind, col(AdminAlert.sent_at) <= now - ALERT_INTERVAL)
                .values(sent_at=now)
            )
        return bool(getattr(claimed, "rowcount", 0))

    async def drain(self) -> None:
        """Wait for the alerts under way (at shutdown; tests)."""
        while self._tasks:
            await asyncio.gather(*self._tasks)
