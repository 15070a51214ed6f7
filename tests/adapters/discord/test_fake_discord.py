"""The fake Discord itself answers as Discord documents: buckets and their headers, 429 bodies with Via,
form errors, upload limits, the interaction deadlines, and channel permissions with their 403s."""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest_asyncio

from tests.fakes.discord import (
    P_ATTACH_FILES,
    P_READ_HISTORY,
    P_SEND_MESSAGES,
    P_VIEW_CHANNEL,
    FakeDiscord,
)


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


async def test_channel_permissions_and_their_403s(fake: FakeDiscord, http: aiohttp.ClientSession) -> None:
    guild = fake.add_guild()
    channel, other, third = fake.add_channel(guild), fake.add_channel(guild), fake.add_channel(guild)
    thread = fake.add_thread(channel)
    bot = fake.bot_user_id
    missing_permissions = {"message": "Missing Permissions", "code": 50013}

    fake.deny_bot(channel, P_SEND_MESSAGES)
    have = fake.channel_permissions(channel, bot)
    assert have & P_VIEW_CHANNEL and not have & (P_SEND_MESSAGES | P_ATTACH_FILES)  # files go with sending
    status, body, _ = await call(http, "POST", f"/channels/{channel}/messages", json={"content": "hi"})
    assert (status, body) == (403, missing_permissions)
    status, _, _ = await call(http, "POST", f"/channels/{thread}/messages", json={"content": "hi"})
    assert status == 200  # a thread needs Send Messages in Threads instead

    fake.deny_bot(channel, P_VIEW_CHANNEL | P_SEND_MESSAGES)
    assert fake.channel_permissions(channel, bot) == 0 == fake.channel_permissions(thread, bot)
    for where in (channel, thread):
        status, body, _ = await call(http, "POST", f"/channels/{where}/messages", json={"content": "hi"})
        assert (status, body) == (403, {"message": "Missing Access", "code": 50001})

    fake.deny_bot(other, P_READ_HISTORY)
    status, first, _ = await call(http, "POST", f"/channels/{other}/messages", json={"content": "first"})
    assert status == 200
    reply = {"content": "reply", "message_reference": {"message_id": first["id"]}}
    status, body, _ = await call(http, "POST", f"/channels/{other}/messages", json=reply)
    assert (status, body) == (403, missing_permissions)  # a reply needs Read Message History
    status, body, _ = await call(http, "GET", f"/channels/{other}/messages")
    assert (status, body) == (200, [])  # as documented: an empty list without it

    fake.add_overwrite(third, guild, deny=P_SEND_MESSAGES)  # @everyone may not post...
    assert not fake.channel_permissions(third, bot) & P_SEND_MESSAGES
    fake.add_overwrite(third, fake.bot_role(guild), allow=P_SEND_MESSAGES)  # ...the bot's role may
    assert fake.channel_permissions(third, bot) & P_SEND_MESSAGES
