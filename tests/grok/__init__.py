"""Tests of bot.grok over the fake xAI server; small shared helpers live here."""

from __future__ import annotations

from typing import Any

import httpx

from bot.grok import (
    ChatMessage,
    ChatRequest,
    ContentDelta,
    GrokClient,
    ReasoningDelta,
    ResponseRequest,
    StreamEvent,
)
from tests.fakes.xai import FAST_RETRY, FakeXAI


def ask(text: str = "hello there", *, model: str = "grok-3", **fields: Any) -> ChatRequest:
    return ChatRequest(model=model, messages=(ChatMessage("user", text),), **fields)


def ask_response(text: str = "hello there", *, model: str = "grok-4.3", **fields: Any) -> ResponseRequest:
    return ResponseRequest(model=model, messages=(ChatMessage("user", text),), **fields)


def texts(events: list[StreamEvent], kind: type[ContentDelta | ReasoningDelta]) -> str:
    """The text of the deltas of one kind, joined."""
    return "".join(e.text for e in events if isinstance(e, kind))


class Sleeps:
    """An injected sleep that records its delays and returns at once (optionally moving a Clock)."""

    def __init__(self, clock: Clock | None = None) -> None:
        self.delays: list[float] = []
        self.clock = clock

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        if self.clock is not None:
            self.clock.t += seconds


class Clock:
    def __init__(self, t: float = 1_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def client(fake: FakeXAI, http: httpx.AsyncClient, **kwargs: Any) -> GrokClient:
    kwargs.setdefault("retry", FAST_RETRY)
    return GrokClient(http, api_key=fake.api_key, base_url=fake.base_url, **kwargs)
