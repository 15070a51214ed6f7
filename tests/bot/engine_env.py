"""An engine wired to the xAI fake, a FakePlatform and a fresh database, for engine tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bot.engine import Engine
from bot.grok import GrokClient
from bot.jobs import Deferrals, DeferredRequests
from bot.platform import Attachment, Author, Command, Image, Incoming, Place
from bot.quotas import Quotas
from bot.settings import Settings
from tests.fakes.platform import Event, FakeMessage, FakePlatform
from tests.fakes.xai import FakeXAI

ALICE = Author("U1", "alice")
BOB = Author("U2", "bob")
PLACE = Place("fake", "W1", "C1", "T1")


def settings_for(fake: FakeXAI, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "xai_api_key": fake.api_key,
        "xai_base_url": fake.base_url,
        "grokbot_model": "grok-4.3",
        "grokbot_reasoning_model": "grok-3-mini",
        "grokbot_image_model": "grok-imagine-image",
        "grokbot_edit_interval_s": 0.2,
        # These stacks script Chat Completions (queue_reply); search answers set "responses".
        "grokbot_xai_api": "chat",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@dataclass
class Clock:
    now: datetime = field(default_factory=lambda: datetime(2026, 11, 26, 12, 0, tzinfo=UTC))

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Watching(FakePlatform):
    """A FakePlatform that sets an asyncio.Event when it records an event that passes a test, so that
    tests wait for what the engine did instead of for time to pass."""

    watchers: list[tuple[Callable[[Event], bool], asyncio.Event]] = field(default_factory=list)

    def when(self, test: Callable[[Event], bool]) -> asyncio.Event:
        flag = asyncio.Event()
        self.watchers.append((test, flag))
        return flag

    def record(self, kind: str, message: FakeMessage, text: str, *, images: tuple[Image, ...] = ()) -> None:
        super().record(kind, message, text, images=images)
        for test, flag in self.watchers:
            if test(self.events[-1]):
                flag.set()


@dataclass
class EngineEnv:
    engine: Engine
    platform: FakePlatform
    fake: FakeXAI
    quotas: Quotas
    clock: Clock
    counter: int = 0

    def said(
        self,
        text: str = "",
        *,
        author: Author = ALICE,
        place: Place = PLACE,
        command: Command | None = None,
        attachments: tuple[Attachment, ...] = (),
        reply_to: str = "",
        addressed: bool = True,
    ) -> Incoming:
        self.counter += 1
        return Incoming(
            place=place,
            author=author,
            text=text,
            command=command,
            attachments=attachments,
            message_id=f"u{self.counter}",
            event_id=f"e{self.counter}",
            reply_to=reply_to,
            addressed=addressed,
        )

    async def say(self, text: str = "", **kwargs: Any) -> None:
        await self.engine.handle(self.said(text, **kwargs), self.platform)

    async def command(self, name: str, text: str = "", **options: str) -> None:
        await self.say(command=Command(name=name, options=options, text=text))


def build(
    fake: FakeXAI,
    grok: GrokClient,
    sessions: Any,
    *,
    platform: FakePlatform | None = None,
    monotonic: Callable[[], float] = time.monotonic,
    **overrides: Any,
) -> EngineEnv:
    settings = settings_for(fake, **overrides)
    clock = Clock()
    quotas = Quotas(sessions, settings, clock=clock)
    engine = Engine(settings, grok=grok, sessions=sessions, quotas=quotas, clock=clock, monotonic=monotonic)
    return EngineEnv(engine, platform or FakePlatform(), fake, quotas, clock)


def with_deferrals(env: EngineEnv, grok: GrokClient, sessions: Any) -> Deferrals:
    """Deferred answers for `env`'s engine, on its clock and platform; poll them with `poll_due`."""
    deferrals = Deferrals(
        DeferredRequests(sessions, clock=env.clock, instance_id="test"),
        grok=grok,
        quotas=env.quotas,
        platforms={"fake": env.platform},
        clock=env.clock,
    )
    env.engine.deferrals = deferrals
    return deferrals
