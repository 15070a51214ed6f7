"""`grokbot admin-link`: a sign-in link for an admin of GROKBOT_ADMINS, or the end of every session."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import TextIO

from bot.admin.signin import NO_PUBLIC_URL, Admin, SignIns, admin_link
from bot.db import create_engine, session_factory, upgrade
from bot.settings import Settings


def now() -> datetime:
    return datetime.now(UTC)


async def admin_link_command(settings: Settings, *, user: str | None, revoke_all: bool, out: TextIO) -> int:
    """Print a link for `user` (platform:user_id) or revoke every session; the exit status."""
    if revoke_all == bool(user):
        out.write("grokbot admin-link: give either --user platform:user_id or --revoke-all.\n")
        return 2
    if user and not settings.is_admin(*user.partition(":")[::2]):
        out.write(f"grokbot admin-link: {user} is not in GROKBOT_ADMINS; links are only for admins.\n")
        return 2
    if user and not settings.grokbot_public_url:
        out.write(NO_PUBLIC_URL + "\n")
        return 2
    if settings.is_sqlite:  # `grokbot run` migrates SQLite itself; so does this
        await asyncio.to_thread(upgrade, settings.database_url)
    db = create_engine(settings.database_url)
    try:
        signins = SignIns(session_factory(db), clock=now)
        if revoke_all:
            ended = await signins.revoke_all()
            out.write(f"Ended {ended} admin sessions; unused sign-in links no longer work.\n")
            return 0
        assert user is not None
        platform, _, user_id = user.partition(":")
        out.write(await admin_link(signins, settings.grokbot_public_url, Admin(platform, user_id)) + "\n")
        return 0
    finally:
        await db.dispose()
