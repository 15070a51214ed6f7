"""The fake Discord itself answers as Discord documents: buckets and their headers, 429 bodies with Via,
form errors, upload limits, the interaction deadlines, and gateway RESUME replay."""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest_asyncio

from tests.fakes.discord import FakeDiscord


@pytest_asyncio.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord() as started:
        yield started


@pytest_asyncio.fixture
async def http(fake: FakeDiscord) -> AsyncIterator[aiohttp.ClientSession]:
    headers = {"Authorization": f"Bot {fake.token}"}
    async with aiohttp.ClientSession(base_url=fake.base, headers=headers) as session:
        yield session


async def call(http: aiohttp.ClientSession, method: str, path: str, **kwargs: Any) -> tuple[int, Any, Any]:
    async with http.request(method, "/api/v10" + path, **kwargs) as response:
        body = await response.read()
        return response.status, (json.loads(body) if body else None), response.headers


async def test_channel_sends_are_bucketed_with_discords_headers_and_429_body(
    fake: FakeDiscord, http: aiohttp.ClientSession
) -> None:
    channel = fake.add_channel(fake.add_guild())
    answers = [
        await call(http, "POST", f"/channels/{channel}/messages", json={"content": "hi"}) for _ in range(6)
    ]
    statuses = [status for status, _, _ in answers]
    assert statuses == [200, 200, 200, 200, 200, 429]
    _, first_body, first = answers[0]
    assert first["X-RateLimit-Limit"] == "5" and first["X-RateLimit-Remaining"] == "4"
    assert float(first["X-RateLimit-Reset-After"]) > 4 and first["X-RateLimit-Bucket"]
    assert first["Content-Type"] == "application/json" and first_body["author"]["bot"] is True
    _, body, limited = answers[-1]
    assert body["global"] is False and 0 < body["retry_after"] <= 5 and body["message"]
    assert limited["Via"] and limited["X-RateLimit-Scope"] == "user" and int(limited["Retry-After"]) >= 1


async def test_form_errors_and_upload_limits(fake: FakeDiscord, http: aiohttp.ClientSession) -> None:
    channel = fake.add_channel(fake.add_guild())
    status, body, _ = await call(http, "POST", f"/channels/{channel}/messages", json={"content": "x" * 2001})
    assert status == 400 and body["code"] == 50035 and "content" in body["errors"]
    status, body, _ = await call(http, "POST", f"/channels/{channel}/messages", json={"content": "  "})
    assert status == 400 and body["code"] == 50006
    embeds = [{"description": "d" * 4097}]
    status, body, _ = await call(http, "POST", f"/channels/{channel}/messages", json={"embeds": embeds})
    assert status == 400 and body["code"] == 50035
    form = aiohttp.FormData(quote_fields=False)
    form.add_field("payload_json", json.dumps({"content": "big"}))
    form.add_field("files[0]", io.BytesIO(b"\0" * (10 * 1024 * 1024 + 1)), filename="big.bin")
    status, body, _ = await call(http, "POST", f"/channels/{channel}/messages", data=form)
    assert status == 413 and body["code"] == 40005
    status, body, _ = await call(http, "GET", "/users/@me", headers={"Authorization": "Bot wrong"})
    assert status == 401


async def test_interaction_deadlines(fake: FakeDiscord, http: aiohttp.ClientSession) -> None:
    from tests.fakes.discord import FakeInteraction

    guild = fake.add_guild()
    channel = fake.add_channel(guild)
    user = fake.add_user("u", guild_id=guild)
    late = FakeInteraction("1", "late-token", "ask", channel, guild, user, created_at=fake.now() - 3.5)
    fresh = FakeInteraction("2", "fresh-token", "ask", channel, guild, user, created_at=fake.now())
    fake.interactions.update({late.id: late, fresh.id: fresh})

    status, body, _ = await call(http, "POST", "/interactions/1/late-token/callback", json={"type": 5})
    assert status == 404 and body["code"] == 10062  # past the 3-second acknowledgement
    status, _, _ = await call(http, "POST", "/interactions/2/fresh-token/callback", json={"type": 5})
    assert status == 204
    status, body, _ = await call(http, "POST", "/interactions/2/fresh-token/callback", json={"type": 5})
    assert status == 400 and body["code"] == 40060
    edit = f"/webhooks/{fake.application_id}/fresh-token/messages/@original"
    status, body, _ = await call(http, "PATCH", edit, json={"content": "done"})
    assert status == 200 and body["content"] == "done" and not body["flags"] & (1 << 7)  # no longer loading
    fake.advance(15 * 60)
    status, body, _ = await call(http, "PATCH", edit, json={"content": "too late"})
    assert status == 401 and body["code"] == 50027
