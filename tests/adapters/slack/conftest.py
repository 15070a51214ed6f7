"""The whole Slack stack over loopback: the fake Slack Web API, the real Bolt app served by bot.web,
the real engine with the xAI fake and a fresh database (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Protocol

import pytest_asyncio

from adapters.slack import SlackAdapter
from bot.engine import Engine, utc_now
from bot.grok import GrokClient
from bot.platform import Capabilities
from bot.quotas import Quotas
from bot.settings import Settings
from bot.web import WebServer
from tests.fakes.slack import EventSender, FakeMessage, FakeSlack
from tests.fakes.xai import FakeXAI

ANA, BO, CY = "U0ANA0001", "U0BO00002", "U0CY00003"
GENERAL, RANDOM, DM_ANA = "C0GENERAL", "C0RANDOM0", "D0ANA0001"


def slack_settings(slack: FakeSlack, xai: FakeXAI, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "xai_api_key": xai.api_key,
        "xai_base_url": xai.base_url,
        "grokbot_model": "grok-4.3",
        "grokbot_reasoning_model": "grok-3-mini",
        "grokbot_image_model": "grok-imagine-image",
        "grokbot_edit_interval_s": 0.2,
        # These stacks script Chat Completions (queue_reply); search answers set "responses".
        "grokbot_xai_api": "chat",
        "slack_bot_token": slack.bot_token,
        "slack_signing_secret": slack.signing_secret,
        "slack_api_url": slack.api_url,
        "grokbot_admins": f"slack:{CY}",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def populate(slack: FakeSlack) -> None:
    slack.add_user(ANA, "ana", display_name="Ana B.")
    slack.add_user(BO, "bo", real_name="Bo Chen")
    slack.add_user(CY, "cy", display_name="Cy")
    slack.add_channel(GENERAL, "general")
    slack.add_channel(RANDOM, "random")
    slack.add_channel(DM_ANA, is_im=True, user=ANA)


@dataclass
class Stack:
    slack: FakeSlack
    xai: FakeXAI
    adapter: SlackAdapter
    web: WebServer
    engine: Engine
    sender: EventSender

    async def settle(self, within: float = 20.0) -> None:
        """Wait until every answer the adapter started has finished."""
        assert await self.adapter.idle(within=within), "answers still running"

    def answers(self, channel: str, thread_ts: str) -> list[FakeMessage]:
        return self.slack.bot_messages(channel, thread_ts=thread_ts)

    def answer_text(self, channel: str, thread_ts: str) -> str:
        return "".join(m.content for m in self.answers(channel, thread_ts))


class StackFactory(Protocol):
    async def __call__(self, *, capabilities: Capabilities | None = None, **overrides: Any) -> Stack: ...


@pytest_asyncio.fixture
async def fake_slack() -> AsyncIterator[FakeSlack]:
    async with FakeSlack() as slack:
        populate(slack)
        yield slack


async def build_stack(
    slack: FakeSlack,
    xai: FakeXAI,
    grok: GrokClient,
    sessions: Any,
    *,
    capabilities: Capabilities | None = None,
    **overrides: Any,
) -> tuple[Stack, Settings]:
    settings = slack_settings(slack, xai, **overrides)
    quotas = Quotas(sessions, settings, clock=utc_now)
    engine = Engine(settings, grok=grok, sessions=sessions, quotas=quotas)
    web = WebServer(port=0, host="127.0.0.1")
    adapter = SlackAdapter(settings, engine, web=web, capabilities=capabilities)
    await adapter.start()
    await web.start()
    slack.echo_url = f"{web.url}/slack/events"  # Slack sends the bot's own posts and edits back
    return Stack(slack, xai, adapter, web, engine, slack.sender(f"{web.url}/slack/events")), settings


@pytest_asyncio.fixture
async def make_stack(
    fake_slack: FakeSlack, fake_xai: FakeXAI, grok: GrokClient, sessions: Any
) -> AsyncIterator[StackFactory]:
    """Build the stack with other settings or capabilities; stopped after the test."""
    built: list[Stack] = []

    async def make(*, capabilities: Capabilities | None = None, **overrides: Any) -> Stack:
        stack, _ = await build_stack(
            fake_slack, fake_xai, grok, sessions, capabilities=capabilities, **overrides
        )
        built.append(stack)
        return stack

    try:
        yield make
    finally:
        for stack in built:
            await stack.web.stop()
            await stack.adapter.stop()


@pytest_asyncio.fixture
async def stack(make_stack: StackFactory) -> Stack:
    return await make_stack()
