"""The edge of POST /slack/events: signed bodies that are not Slack deliveries get a 400 and one log
line, unsigned ones a 401, oversized ones a 413; and while the adapter drains, deliveries are answered
so that they are made again (Slack redelivers events, people run commands again), never dropped."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import time
from typing import Any

import pytest
from pydantic import SecretStr

from adapters.slack import SlackAdapter
from tests.adapters.slack.conftest import ANA, BO, GENERAL, Stack, StackFactory
from tests.fakes.slack import BOT_USER_ID, FakeSlack, envelope, sign
from tests.fakes.xai import ScriptedReply

FORM = "application/x-www-form-urlencoded"
NOT_DELIVERIES = [  # (body, content type, what the log line says)
    (b"{not json", "application/json", "not valid JSON"),
    (b"", "application/json", "not valid JSON"),
    (b"[1, 2]", "application/json", "a JSON list, not an object"),
    (b'{"event": {"type": "app_mention"}}', "application/json", "has no type"),
    (b"team_id=T1&text=hello", FORM, "a form without payload or command"),
    (b"payload=%7Bnot+json", FORM, "the payload is not valid JSON"),
    (b"payload=%5B%5D", FORM, "the payload is a JSON list"),
    (b"\xff\xfe{}", "text/plain", "not UTF-8"),
]


async def test_a_signed_body_that_is_not_a_delivery_gets_a_400_and_one_log_line(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    for body, content_type, problem in NOT_DELIVERIES:
        caplog.clear()
        delivery = await stack.sender.post(body, content_type)
        assert delivery.status == 400, body
        assert delivery.headers["X-Slack-No-Retry"] == "1"  # sent again, it would be no better
        [line] = [
            r for r in caplog.records if r.name.startswith(("adapters", "bot", "slack_bolt", "aiohttp"))
        ]
        assert line.levelno == logging.WARNING and problem in line.getMessage(), body
        assert line.exc_info is None  # no traceback
    assert stack.xai.chat_requests() == []


async def test_an_unsigned_bad_body_keeps_its_401_and_an_oversized_one_its_413(stack: Stack) -> None:
    forged = await stack.sender.post(b"{not json", "application/json", secret="not-the-signing-secret")
    assert forged.status == 401
    for headers in (
        {"X-Slack-Signature": ""},
        {"X-Slack-Request-Timestamp": "soon"},
        {"X-Slack-Signature": "é"},
    ):
        unsigned = await stack.sender.post(b"[1, 2]", "application/json", headers=headers)
        assert unsigned.status == 401, headers  # a malformed header is no signature, not a 500
    event = {"type": "app_mention", "channel": GENERAL, "user": ANA, "text": "x" * 2**20}
    body = json.dumps(stack.sender.envelope(event)).encode()
    timestamp = str(int(time.time()))
    signed = {"Content-Type": "application/json", "X-Slack-Request-Timestamp": timestamp,
              "X-Slack-Signature": sign(stack.slack.signing_secret, timestamp, body)}  # fmt: skip
    async with stack.sender.session.post(
        stack.sender.url, data=io.BytesIO(body), headers=signed
    ) as oversized:
        assert oversized.status == 413  # aiohttp's client_max_size (1 MiB), before anything reads it
    await stack.settle()
    assert stack.xai.chat_requests() == []


def mention_of(stack: Stack, text: str, event_id: str) -> tuple[str, dict[str, Any]]:
    """A person's mention of the bot, and the Events API body of its app_mention."""
    message = stack.slack.post_user_message(GENERAL, ANA, f"<@{BOT_USER_ID}> {text}")
    event = {"type": "app_mention", "channel": GENERAL, "user": ANA, "text": message.text, "ts": message.ts}
    return message.ts, stack.sender.envelope(event, event_id=event_id)


async def test_while_draining_answers_go_on_and_new_events_are_redelivered_and_answered_once(
    make_stack: StackFactory,
) -> None:
    first = await make_stack()
    release = asyncio.Event()
    first.xai.queue_reply(ScriptedReply(text="The first answer, written in full.", holds=((3, release),)))
    in_flight, _ = await first.sender.mention(GENERAL, ANA, "tell me something")
    await first.slack.wait_until(lambda: first.answers(GENERAL, in_flight.ts))  # it is being written

    await first.adapter.drain()
    assert not await first.adapter.ready()  # /readyz: send no more here
    later_ts, later = mention_of(first, "and something else", "Ev0DURINGDRAIN")
    refused = await first.sender.deliver(later)
    assert refused.status == 503 and refused.headers["Retry-After"]  # Slack sends it again
    command = await first.sender.command("what time is it?", user=BO, channel=GENERAL)
    assert command.status == 200 and "run the command again" in json.loads(command.body)["text"]
    challenge = await first.sender.post(
        b'{"type": "url_verification", "challenge": "c1"}', "application/json"
    )
    assert challenge.status == 200 and "c1" in challenge.body
    release.set()
    await first.settle()
    assert first.answer_text(GENERAL, in_flight.ts) == "The first answer, written in full."
    assert len(first.xai.chat_requests()) == 1  # neither the refused event nor the command reached Grok

    # Slack's retry reaches another instance on the same database (or this one, restarted).
    second = await make_stack()
    second.xai.queue_reply(ScriptedReply(text="Answered once."))
    assert (await second.sender.deliver(later, retry_num=1)).status == 200
    assert (await second.sender.deliver(later, retry_num=2)).status == 200
    await second.settle()
    assert [m.content for m in second.answers(GENERAL, later_ts)] == ["Answered once."]
    assert len(second.xai.chat_requests()) == 2


async def test_draining_in_socket_mode_closes_the_connection_and_finishes_the_answers(
    stack: Stack, fake_slack: FakeSlack
) -> None:
    settings = stack.adapter.settings.model_copy(
        update={"slack_app_token": SecretStr(fake_slack.app_token), "slack_signing_secret": None}
    )
    fake_slack.echo_url = None
    adapter = SlackAdapter(settings, stack.engine)
    await adapter.start()
    try:
        await fake_slack.wait_until(lambda: fake_slack.socket_mode.connections)
        release = asyncio.Event()
        stack.xai.queue_reply(ScriptedReply(text="Finished after the socket closed.", holds=((3, release),)))
        message = fake_slack.post_user_message(GENERAL, ANA, f"<@{BOT_USER_ID}> hello over the socket")
        mention = {
            "type": "app_mention",
            "channel": GENERAL,
            "user": ANA,
            "text": message.text,
            "ts": message.ts,
        }
        await fake_slack.socket_mode.deliver(envelope(fake_slack, mention))
        await fake_slack.wait_until(lambda: fake_slack.bot_messages(GENERAL, thread_ts=message.ts))
        await adapter.drain()
        # Slack now sends envelopes to another connection (or holds them until one opens).
        await fake_slack.wait_until(lambda: not fake_slack.socket_mode.connections)
        assert not await adapter.ready()
        release.set()
        assert await adapter.idle(within=20)
    finally:
        await adapter.stop()
    [answer] = fake_slack.bot_messages(GENERAL, thread_ts=message.ts)
    assert answer.content == "Finished after the socket closed."
