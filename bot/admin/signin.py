"""Signing in to the admin pages: one-time links handed out in the chat, and browser sessions.

Tokens are random; the database keeps only their SHA-256, so a copy of it opens nothing. A link
is good for 10 minutes and once; a session ends after 12 hours without a request, or when revoked.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlmodel import col, delete

from bot.db import Sessions
from bot.tables import AdminSession, AdminSignIn

LINK_TTL = timedelta(minutes=10)
IDLE_TIMEOUT = timedelta(hours=12)


@dataclass(frozen=True)
class Admin:
    """Who is signed in. `workspace` "" sees every workspace (GROKBOT_ADMINS); otherwise the admin
    was vouched for by the platform in that one workspace (guild, team) and sees only it."""

    platform: str
    user_id: str
    workspace: str = ""

    @property
    def label(self) -> str:
        return f"{self.platform}:{self.user_id}"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def csrf_token(session_token: str) -> str:
    """The forms' CSRF token: derived from the session's secret, which only its cookie holds."""
    return hmac.new(session_token.encode(), b"grokbot-admin-csrf", hashlib.sha256).hexdigest()


def csrf_matches(session_token: str, given: str) -> bool:
    return hmac.compare_digest(csrf_token(session_token), given)


class SignIns:
    """Links and sessions in the database; every method is one short transaction."""

    def __init__(self, sessions: Sessions, *, clock: Callable[[], datetime]) -> None:
        self._sessions = sessions
        self._clock = clock

    async def issue_link(self, admin: Admin) -> str:
        """A new one-time link token for `admin` (who must already be known to be an admin)."""
        token = secrets.token_urlsafe(32)
        now = self._clock()
        async with self._sessions.begin() as session:
            session.add(
                AdminSignIn(
                    token_hash=token_hash(token),
                    platform=admin.platform,
                    user_id=admin.user_id,
                    workspace=admin.workspace,
                    created_at=now,
                    expires_at=now + LINK_TTL,
                )
            )
        return token

    async def redeem(self, link_token: str) -> str | None:
        """Use a link once: a new session token, or None when the link is unknown, used or expired."""
        now = self._clock()
        claim = (
            update(AdminSignIn)
            .where(
                col(AdminSignIn.token_hash) == token_hash(link_token),
                col(AdminSignIn.used_at).is_(None),
                col(AdminSignIn.expires_at) > now,
            )
            .values(used_at=now)
            .returning(col(AdminSignIn.platform), col(AdminSignIn.user_id), col(AdminSignIn.workspace))
        )
        token = secrets.token_urlsafe(32)
        async with self._sessions.begin() as session:
            # One conditional UPDATE: two clicks racing on one link cannot both win it.
            row = (await (await session.connection()).execute(claim)).first()
            if row is None:
                return None
            platform, user_id, workspace = row
            session.add(
                AdminSession(
                    token_hash=token_hash(token),
                    platform=platform,
                    user_id=user_id,
                    workspace=workspace,
                    created_at=now,
                    last_seen_at=now,
                )
            )
        return token

    async def admin_for(self, session_token: str) -> Admin | None:
        """The admin of a live session, whose idle time starts again; None when there is none."""
        if not session_token:
            return None
        now = self._clock()
        touch = (
            update(AdminSession)
            .where(
                col(AdminSession.token_hash) == token_hash(session_token),
                col(AdminSession.revoked_at).is_(None),
                col(AdminSession.last_seen_at) > now - IDLE_TIMEOUT,
            )
            .values(last_seen_at=now)
            .returning(col(AdminSession.platform), col(AdminSession.user_id), col(AdminSession.workspace))
        )
        async with self._sessions.begin() as session:
            row = (await (await session.connection()).execute(touch)).first()
        return None if row is None else Admin(*row)

    async def sign_out(self, session_token: str) -> None:
        async with self._sessions.begin() as session:
            await (await session.connection()).execute(
                delete(AdminSession).where(col(AdminSession.token_hash) == token_hash(session_token))
            )

    async def revoke_all(self) -> int:
        """End every live session and void every unused link; the number of sessions ended."""
        now = self._clock()
        async with self._sessions.begin() as session:
            ended = await (await session.connection()).execute(
                update(AdminSession)
                .where(
                    col(AdminSession.revoked_at).is_(None),
                    col(AdminSession.last_seen_at) > now - IDLE_TIMEOUT,
                )
                .values(revoked_at=now)
            )
            await (await session.connection()).execute(
                update(AdminSignIn).where(col(AdminSignIn.used_at).is_(None)).values(used_at=now)
            )
        return int(getattr(ended, "rowcount", 0) or 0)


NO_PUBLIC_URL = (
    "The admin pages need to know where people reach this server: set GROKBOT_PUBLIC_URL to its "
    "public base URL (e.g. https://grokbot.example.com, the host that serves /slack/events and "
    "/healthz), restart grokbot, and run `admin` again."
)


async def admin_link(signins: SignIns, public_url: str | None, admin: Admin) -> str:
    """The private answer to `admin` (and `grokbot admin-link`): a one-time sign-in link, or what
    to set to get one."""
    if not public_url:
        return NO_PUBLIC_URL
    token = await signins.issue_link(admin)
    minutes = int(LINK_TTL.total_seconds() // 60)
    return (
        f"Your sign-in link to grokbot's admin pages, good once within {minutes} minutes; do not "
        f"share it: {public_url}/admin/signin/{token}"
    )
