"""Fixtures of the bot.grok tests beyond the fake and its client (tests/conftest.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.fakes.xai import FakeXAI


@pytest.fixture
async def raw(fake_xai: FakeXAI) -> AsyncIterator[httpx.AsyncClient]:
    """Plain httpx on the fake's /v1 with its key: the fake read without the client."""
    headers = {"Authorization": f"Bearer {fake_xai.api_key}"}
    async with httpx.AsyncClient(base_url=fake_xai.base_url, headers=headers) as http:
        yield http
