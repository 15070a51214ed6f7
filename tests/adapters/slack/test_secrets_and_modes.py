"""Secrets never reach logs; Socket Mode is wired when an app token is set."""

from __future__ import annotations

import logging

import pytest

from adapters.slack.app import SlackAdapter
from tests.adapters.slack.conftest import ANA, GENERAL, Stack, StackFactory
from tests.fakes.slack import BOT_TOKEN, SIGNING_SECRET
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


async def test_socket_mode_is_used_when_an_app_token_is_set(stack: Stack) -> None:
    settings = stack.adapter.settings.model_copy(
        update={"slack_app_token": stack.adapter.settings.slack_bot_token, "slack_signing_secret": None}
    )
    adapter = SlackAdapter(settings, stack.engine)
    try:
        assert adapter.socket_mode
        assert adapter.socket is not None
        assert adapter.socket.app is adapter.app
        assert adapter.socket.client.web_client is adapter.client
        assert not await adapter.socket.client.is_connected()
    finally:
        await adapter.socket.client.close()  # type: ignore[no-untyped-call,union-attr]
