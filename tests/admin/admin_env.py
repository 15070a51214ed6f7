"""The admin pages on a real web server over a migrated database, with a settable clock, and
helpers to sign in and to seed the ledger."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import aiohttp

from bot.admin import Admin, SignIns, mount
from bot.db import Sessions
from bot.grok import PriceBook
from bot.quotas import Quotas
from bot.settings import Settings
from bot.tables import Conversation, Turn, UsageEvent
from bot.web import WebServer
from tests.bot.engine_env import Clock

ADMIN = Admin("slack", "UADMIN")
SECRET_KEY = "xai-SECRETKEYnevershown0123456789"
USD = 10_000_000_000


def admin_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "xai_api_key": SECRET_KEY,
        "slack_bot_token": "xoxb-SECRET-slack-token",
        "discord_token": "SECRET.discord.token",
        "grokbot_admins": "slack:UADMIN",
        "grokbot_public_url": "http://127.0.0.1",
        "grokbot_workspace_monthly_usd": "50",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@dataclass
class AdminEnv:
    url: str
    sessions: Sessions
    settings: Settings
    quotas: Quotas
    signins: SignIns
    clock: Clock
    prices: PriceBook

    async def link_token(self, admin: Admin = ADMIN) -> str:
        return await self.signins.issue_link(admin)

    def client(self) -> aiohttp.ClientSession:
        # The default jar refuses cookies of IP hosts such as 127.0.0.1.
        return aiohttp.ClientSession(self.url, cookie_jar=aiohttp.CookieJar(unsafe=True))

    async def sign_in(self, http: aiohttp.ClientSession, admin: Admin = ADMIN) -> None:
        token = await self.link_token(admin)
        async with http.post("/admin/signin", data={"token": token}, allow_redirects=False) as response:
            assert response.status == 303, await response.text()

    async def csrf(self, http: aiohttp.ClientSession, path: str = "/admin/") -> str:
        async with http.get(path) as response:
            found = re.search(r'name="csrf" value="([0-9a-f]{64})"', await response.text())
        assert found is not None
        return found.group(1)

    async def charge(
        self,
        at: datetime,
        *,
        user: str = "U1",
        workspace: str = "T1",
        platform: str = "slack",
        kind: str = "chat",
        model: str = "grok-4.3",
        ticks: int = USD // 100,
        request_id: str = "",
        tools: int = 0,  # the part of `ticks` spent on search tools
    ) -> None:
        async with self.sessions.begin() as session:
            session.add(
                UsageEvent(
                    idempotency_key=f"k-{at.isoformat()}-{user}-{kind}-{model}-{ticks}",
                    platform=platform, workspace=workspace, user_id=user, kind=kind, model=model,
                    cost_ticks=ticks, prompt_tokens=10, completion_tokens=5, xai_request_id=request_id,
                    created_at=at, tool_calls=1 if tools else 0, tool_cost_ticks=tools,
                )
            )  # fmt: skip

    async def said(self, user: str, name: str, *, platform: str = "slack", fingerprint: str = "") -> None:
        """A conversation turn by `user` under `name` (where the pages find names)."""
        now = self.clock()
        async with self.sessions.begin() as session:
            conversation = Conversation(
                platform=platform, workspace="T1", channel="C1", thread=f"t-{user}-{now.timestamp()}",
                grok_conv_id="c", created_at=now, updated_at=now,
            )  # fmt: skip
            session.add(conversation)
            await session.flush()
            assert conversation.id is not None
            turn = {"conversation_id": conversation.id, "created_at": now}
            session.add(Turn(role="user", author_id=user, author_name=name, text="hi", **turn))
            if fingerprint:
                answer = {"fingerprint": fingerprint, "xai_request_id": f"req-{user}"}
                session.add(Turn(role="assistant", text="hello", **answer, **turn))


@asynccontextmanager
async def serve(sessions: Sessions, clock: Clock | None = None, **overrides: Any) -> AsyncIterator[AdminEnv]:
    settings = admin_settings(**overrides)
    clock = clock or Clock()
    quotas = Quotas(sessions, settings, clock=clock)
    prices = PriceBook()
    web = WebServer(port=0, host="127.0.0.1")
    mount(web, sessions=sessions, settings=settings, quotas=quotas, clock=clock, prices=prices)
    await web.start()
    try:
        yield AdminEnv(web.url, sessions, settings, quotas, SignIns(sessions, clock=clock), clock, prices)
    finally:
        await web.stop()


def days_ago(clock: Clock, days: int, hours: int = 0) -> datetime:
    return clock() - timedelta(days=days, hours=hours)
