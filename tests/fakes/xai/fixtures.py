"""pytest fixtures: a started fake (`fake_xai`) and a GrokClient wired to it (`grok`)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest_asyncio

from bot.grok import GrokClient, RetryPolicy
from bot.grok.net import AsyncioTransport
from tests.fakes.xai.server import FakeXAI

FAST_RETRY = RetryPolicy(attempts=4, base=0.001, cap=0.005)


@pytest_asyncio.fixture
async def fake_xai() -> AsyncIterator[FakeXAI]:
    """A started FakeXAI, stopped after the test."""
    async with FakeXAI() as fake:
        yield fake


@pytest_asyncio.fixture
async def grok(fake_xai: FakeXAI) -> AsyncIterator[GrokClient]:
    """A GrokClient on a fresh httpx.AsyncClient pointed at `fake_xai`; retry waits near zero."""
    async with httpx.AsyncClient(transport=AsyncioTransport()) as http:
        yield GrokClient(http, api_key=fake_xai.api_key, base_url=fake_xai.base_url, retry=FAST_RETRY)
