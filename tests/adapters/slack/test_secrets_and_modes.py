"""Secrets never reach logs; with an app token, events arrive over Socket Mode and are answered."""

from __future__ import annotations

import logging

import pytest
from pydantic import SecretStr

from adapters.slack import SlackAdapter
from tests.adapters.slack.conftest import ANA, GENERAL, Stack, StackFactory
from tests.fakes.slack import BOT_TOKEN, BOT_USER_ID, SIGNING_SECRET, FakeSlack, envelope
from tests.fakes.xai import ScriptedReply


async def test_no_secret_appears_in_logs(make_stack: StackFactory, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    stack = await make_stack()
    stack.xai.queue_reply(ScriptedReply(text="Logged answer."))
    message, _ = await stack.sender.mention(GENERAL, ANA, "hello")
    await stack.sender.command("usage", user=ANA, channel=GENERAL)
    await stack.sender.deliver(stack.sender.envelope({"type": "app_mention"}), secret="forged")
    stack.slack.fail["chat.postMessage"].append("invalid_auth")
    await stack.sender.command("what now?", user=ANA, channel=GENERAL)
    await stack.settle()
    assert stack.answer_text(GENERAL, message.ts) == "Logged answer."
    assert len(caplog.records) > 20  # the run was really logged, down to the SDKs' request lines
    logged = caplog.text + "".join(str(r.args) for r in caplog.records)
    assert BOT_TOKEN not in logged
    assert BOT_TOKEN.split("-")[-1] not in logged
    assert SIGNING_SECRET not in logged


async def test_socket_mode_acknowledges_an_envelope_and_answers_the_mention(
    stack: Stack, fake_slack: FakeSlack
) -> None:
    # No public URL: the adapter opens a WebSocket with the app-level token (apps.connections.open)
    # and Slack sends events over it, each acknowledged by its envelope_id.
    settings = stack.adapter.settings.model_copy(
        update={"slack_app_token": SecretStr(fake_slack.app_token), "slack_signing_secret": None}
    )
    fake_slack.echo_url = None  # Slack sends the bot's own posts back over the socket instead
    adapter = SlackAdapter(settings, stack.engine)
    assert adapter.socket_mode
    assert adapter.socket is not None
    assert adapter.socket.app is adapter.app
    assert adapter.socket.client.web_client is adapter.client
    assert not await adapter.socket.client.is_connected()
    await adapter.start()
    try:
        await fake_slack.wait_until(lambda: fake_slack.socket_mode.connections)
        assert await adapter.ready()
        [opened] = [c for c in fake_slack.calls if c.method == "apps.connections.open"]
        assert opened.error == ""  # with the app token: the bot token may not open connections
        stack.xai.queue_reply(ScriptedReply(text="Answered over Socket Mode."))
        message = fake_slack.post_user_message(GENERAL, ANA, f"<@{BOT_USER_ID}> hello over the socket")
        mention = {"type": "app_mention", "channel": GENERAL, "user": ANA, "text": message.text,
                   "ts": message.ts, "team": fake_slack.team_id}  # fmt: skip
        ack = await fake_slack.socket_mode.deliver(envelope(fake_slack, mention))
        assert set(ack) == {"envelope_id"}  # acknowledged, with nothing to say back
        assert await adapter.idle(within=20)
    finally:
        await adapter.stop()
    [answer] = fake_slack.bot_messages(GENERAL, thread_ts=message.ts)
    assert answer.content == "Answered over Socket Mode."
    [asked] = stack.xai.chat_requests()  # the bot's own posts came back over the socket: not answered
    assert "hello over the socket" in str(asked.json["messages"][-1]["content"])
    await fake_slack.wait_until(lambda: not fake_slack.socket_mode.connections)  # stop() closed it
