"""The whole Discord stack over loopback: the fake Discord (gateway + REST), the real discord.py client in
DiscordAdapter, the real engine and quotas with the xAI fake, and a fresh database (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pytest
import pytest_asyncio

from adapters.discord import DiscordAdapter
from bot.db import Sessions
from bot.engine import Engine, utc_now
from bot.grok import GrokClient
from bot.quotas import Quotas
from bot.settings import Settings
from tests.fakes.discord import FakeDiscord
from tests.fakes.xai import FakeXAI


def discord_settings(
    fake: FakeDiscord, xai: FakeXAI, *, omit: tuple[str, ...] = (), **overrides: Any
) -> Settings:
    """Settings for the fakes; `omit` leaves variables unset (their contract defaults)."""
    values: dict[str, Any] = {
        "xai_api_key": xai.api_key,
        "xai_base_url": xai.base_url,
        "grokbot_model": "grok-4.3",
        "grokbot_reasoning_model": "grok-3-mini",
        "grokbot_image_model": "grok-imagine-image",
        "grokbot_edit_interval_s": 0.2,
        # These stacks script Chat Completions (queue_reply); search answers set "responses".
        "grokbot_xai_api": "chat",
        "discord_token": fake.token,
        "discord_api_base_url": fake.rest_url,
        "discord_gateway_url": fake.gateway_url,
        "discord_guild_ids": ",".join(fake.guilds),
    }
    values.update(overrides)
    for name in omit:
        values.pop(name, None)
    return Settings(_env_file=None, **values)


@dataclass
class World:
    """The fake Discord's people and places."""

    guild: str
    general: str
    random: str
    alice: str
    bob: str
    admin: str


def populate(fake: FakeDiscord) -> World:
    guild = fake.add_guild("Grok lab")
    general = fake.add_channel(guild, "general")
    random = fake.add_channel(guild, "random")
    managers = fake.add_role(guild, "managers", permissions=1 << 5)  # Manage Server
    alice = fake.add_user("alice", guild_id=guild)
    bob = fake.add_user("bob", guild_id=guild)
    admin = fake.add_user("boss", guild_id=guild, roles=[managers])
    return World(guild, general, random, alice, bob, admin)


@dataclass
class Stack:
    fake: FakeDiscord
    xai: FakeXAI
    world: World
    settings: Settings
    engine: Engine
    adapter: DiscordAdapter
    started: list[DiscordAdapter] = field(default_factory=list)

    async def idle(self, *, within: float = 10.0) -> None:
        """Wait until every message and command has been fully handled (answers recorded)."""
        for adapter in self.started:
            assert await adapter.idle(within=within), "answers still running"

    async def new_adapter(self, **overrides: Any) -> DiscordAdapter:
        """Another adapter (e.g. a restart) on the same fakes and database; stopped with the stack."""
        settings = discord_settings(self.fake, self.xai, **overrides)
        adapter = DiscordAdapter(settings, self.engine, guild_ready_timeout=0.02)
        self.started.append(adapter)
        return adapter


@pytest_asyncio.fixture
async def discord_fake() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord() as fake:
        yield fake


def build_engine(settings: Settings, grok: GrokClient, sessions: Sessions) -> Engine:
    return Engine(settings, grok=grok, sessions=sessions, quotas=Quotas(sessions, settings, clock=utc_now))


@pytest.fixture
def world(discord_fake: FakeDiscord) -> World:
    return populate(discord_fake)


@pytest_asyncio.fixture
async def stack_factory(
    discord_fake: FakeDiscord, world: World, fake_xai: FakeXAI, grok: GrokClient, sessions: Sessions
) -> AsyncIterator[Callable[..., Any]]:
    """`await stack_factory(clock=..., **settings_overrides)` → a started Stack; all stop after the test."""
    stacks: list[Stack] = []

    async def make(*, start: bool = True, clock: Callable[[], datetime] = utc_now, **overrides: Any) -> Stack:
        settings = discord_settings(discord_fake, fake_xai, **overrides)
        engine = build_engine(settings, grok, sessions)
        adapter = DiscordAdapter(settings, engine, guild_ready_timeout=0.02, clock=clock)
        stack = Stack(discord_fake, fake_xai, world, settings, engine, adapter, [adapter])
        stacks.append(stack)
        if start:
            await adapter.start()
        return stack

    yield make
    for stack in stacks:
        for adapter in stack.started:
            await adapter.stop(grace=5.0)


@pytest_asyncio.fixture
async def stack(stack_factory: Callable[..., Any]) -> Stack:
    started: Stack = await stack_factory()
    return started
