"""The fake Slack itself behaves as Slack documents: limits, encodings, errors, paging."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import aiohttp
import pytest
import pytest_asyncio
from slack_sdk.errors import SlackApiError
from slack_sdk.models.blocks import UrlSourceElement
from slack_sdk.models.messages.chunk import TaskUpdateChunk
from slack_sdk.web.async_client import AsyncWebClient

from tests.adapters.slack.conftest import ANA, GENERAL, RANDOM
from tests.fakes.slack import FakeSlack


@pytest_asyncio.fixture
async def client(fake_slack: FakeSlack) -> AsyncIterator[AsyncWebClient]:
    async with aiohttp.ClientSession() as session:
        yield AsyncWebClient(token=fake_slack.bot_token, base_url=fake_slack.api_url, session=session)


async def test_rate_limits_answer_429_with_retry_after(fake_slack: FakeSlack, client: AsyncWebClient) -> None:
    posted = await client.chat_postMessage(channel=GENERAL, text="hi")
    for _ in range(50):  # Tier 3: 50 a minute per workspace
        await client.chat_update(channel=GENERAL, ts=posted["ts"], text="edit")
    with pytest.raises(SlackApiError) as refused:
        await client.chat_update(channel=GENERAL, ts=posted["ts"], text="one too many")
    assert refused.value.response.status_code == 429
    assert int(refused.value.response.headers["Retry-After"]) >= 1
    for _ in range(3):  # posting: about one a second per channel, with a short burst
        await client.chat_postMessage(channel=RANDOM, text="burst")
    with pytest.raises(SlackApiError) as fast:
        for _ in range(3):
            await client.chat_postMessage(channel=RANDOM, text="burst")
    assert fast.value.response.status_code == 429
    assert fake_slack.rate_limited == 2


async def test_errors_and_encodings(fake_slack: FakeSlack, client: AsyncWebClient) -> None:
    with pytest.raises(SlackApiError, match="msg_too_long"):
        await client.chat_postMessage(channel=GENERAL, text="x" * 4_001)
    with pytest.raises(SlackApiError, match="channel_not_found"):
        await client.chat_postMessage(channel="C0NOWHERE", text="hi")
    with pytest.raises(SlackApiError, match="invalid_blocks"):
        await client.chat_postMessage(channel=GENERAL, text="hi", blocks=[{"type": "nonsense"}])
    with pytest.raises(SlackApiError, match="missing_recipient_user_id"):
        await client.chat_startStream(channel=GENERAL, thread_ts=(await client.chat_postMessage(
            channel=GENERAL, text="parent"))["ts"], markdown_text="hi")  # fmt: skip
    bad = AsyncWebClient(token="xoxb-wrong", base_url=fake_slack.api_url, session=client.session)
    with pytest.raises(SlackApiError, match="invalid_auth"):
        await bad.auth_test()
    assert client.session is not None
    form = {"token": fake_slack.bot_token, "channel": RANDOM, "blocks": json.dumps([{"type": "divider"}]),
            "text": "form-encoded"}  # fmt: skip
    async with client.session.post(fake_slack.api_url + "chat.postMessage", data=form) as response:
        assert (await response.json())["ok"] is True
    async with client.session.post(fake_slack.api_url + "chat.postMessage", json=form) as response:
        assert (await response.json())["error"] == "invalid_arguments"  # JSON bodies carry no token


async def test_threads_page_with_cursors(fake_slack: FakeSlack, client: AsyncWebClient) -> None:
    parent = fake_slack.post_user_message(GENERAL, ANA, "parent")
    for index in range(5):
        fake_slack.post_user_message(GENERAL, ANA, f"reply {index}", thread_ts=parent.ts)
    texts: list[str] = []
    cursor: str | None = None
    while True:
        page = await client.conversations_replies(channel=GENERAL, ts=parent.ts, limit=2, cursor=cursor)
        texts += [m["text"] for m in page["messages"]]
        cursor = page["response_metadata"]["next_cursor"] or None
        if not cursor:
            break
    assert texts == ["parent"] + [f"reply {i}" for i in range(5)]


async def test_stream_chunks_are_checked_as_slack_checks_them(
    fake_slack: FakeSlack, client: AsyncWebClient
) -> None:
    parent = await client.chat_postMessage(channel=GENERAL, text="parent")
    card = TaskUpdateChunk(id="t1", title="Searching", status="in_progress")
    started = await client.chat_startStream(
        channel=GENERAL, thread_ts=parent["ts"], recipient_user_id=ANA, recipient_team_id=fake_slack.team_id,
        chunks=[card],
    )  # fmt: skip
    ts = started["ts"]
    source = UrlSourceElement(url="https://x.ai/news", text="xAI news")
    done = TaskUpdateChunk(id="t1", title="Searched", status="complete", sources=[source])
    await client.chat_appendStream(channel=GENERAL, ts=ts, chunks=[done])
    bad_chunks: list[dict[str, object]] = [
        {"type": "task_update", "id": "t2", "title": "x", "status": "running"},  # no such status
        {"type": "task_update", "id": "t2", "title": "x", "status": "complete",
         "sources": [{"type": "url", "url": "https://x.ai"}]},  # a source without text
        {"type": "task_update", "id": "t2", "title": "x", "status": "complete", "details": "d" * 257},
        {"type": "mystery"},
    ]  # fmt: skip
    for chunk in bad_chunks:
        with pytest.raises(SlackApiError, match="invalid_chunks"):
            await client.chat_appendStream(channel=GENERAL, ts=ts, chunks=[chunk])
    with pytest.raises(SlackApiError, match="no_text"):
        await client.chat_appendStream(channel=GENERAL, ts=ts)
    too_many = [{"type": "mrkdwn", "text": f"{n}"} for n in range(11)]
    with pytest.raises(SlackApiError, match="invalid_blocks"):
        await client.chat_stopStream(
            channel=GENERAL, ts=ts, blocks=[{"type": "context", "elements": too_many}]
        )
    await client.chat_stopStream(channel=GENERAL, ts=ts, markdown_text="Done.")
    (message,) = fake_slack.bot_messages(GENERAL, thread_ts=parent["ts"])
    assert [(t["id"], t["status"]) for t in message.tasks] == [("t1", "in_progress"), ("t1", "complete")]
    assert message.tasks[1]["sources"] == [{"type": "url", "url": "https://x.ai/news", "text": "xAI news"}]
    assert message.content == "Done."
