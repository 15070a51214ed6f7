"""Slack's agent view: prompts suggested when a person opens the Messages tab, and the channel they
are viewing told to the model with their direct-message questions."""

from __future__ import annotations

from adapters.slack.agent import SUGGESTED_PROMPTS
from tests.adapters.slack.conftest import ANA, BO, DM_ANA, GENERAL, RANDOM, Stack
from tests.fakes.xai import ScriptedReply

DM_BO = "D0BO00002"


def last_question(stack: Stack) -> str:
    return str(stack.xai.chat_requests()[-1].json["messages"][-1]["content"])


async def test_opening_the_messages_tab_suggests_the_prompts(stack: Stack) -> None:
    delivery = await stack.sender.home_opened(ANA, DM_ANA)
    assert delivery.status == 200
    await stack.settle()
    shown = stack.slack.suggested_prompts[DM_ANA]
    assert shown["prompts"] == [dict(p) for p in SUGGESTED_PROMPTS] and shown["title"]
    [call] = stack.slack.calls_to("assistant.threads.setSuggestedPrompts")
    assert "thread_ts" not in call.args  # the agent view ignores prompts sent with a thread_ts
    await stack.sender.home_opened(BO, DM_BO, tab="home")  # the Home tab: nothing to suggest
    await stack.settle()
    assert len(stack.slack.calls_to("assistant.threads.setSuggestedPrompts")) == 1


async def test_a_failed_suggestion_is_only_logged(stack: Stack) -> None:
    stack.slack.fail["assistant.threads.setSuggestedPrompts"].append("channel_not_found")
    assert (await stack.sender.home_opened(ANA, DM_ANA)).status == 200
    await stack.settle()
    assert stack.slack.suggested_prompts == {}
    assert stack.slack.bot_messages() == [] and stack.slack.ephemerals == []


async def test_a_direct_question_names_the_channel_being_viewed(stack: Stack) -> None:
    stack.slack.add_channel(DM_BO, is_im=True, user=BO)
    for _ in range(4):
        stack.xai.queue_reply(ScriptedReply(text="Noted."))
    assert (await stack.sender.context_changed(ANA, GENERAL, RANDOM)).status == 200  # most relevant first
    await stack.sender.message(DM_ANA, ANA, "summarise this channel")
    await stack.settle()
    assert last_question(stack).endswith(
        "summarise this channel\n\n[Context: the person asking is viewing the channel <#C0GENERAL>]"
    )
    await stack.sender.message(DM_BO, BO, "what am I looking at?")  # Bo's view is not known
    await stack.settle()
    assert "Context:" not in last_question(stack)
    await stack.sender.context_changed(ANA)  # Ana now views no channel
    await stack.sender.message(DM_ANA, ANA, "and now?")
    await stack.settle()
    assert "Context:" not in last_question(stack)
    assert len(stack.xai.chat_requests()) == 3


async def test_the_messages_own_context_wins_and_command_words_stay_commands(stack: Stack) -> None:
    stack.xai.queue_reply(ScriptedReply(text="Noted."))
    await stack.sender.context_changed(ANA, GENERAL)
    message = stack.slack.post_user_message(DM_ANA, ANA, "what is this channel for?")
    viewed = {"type": "slack#/types/message_context", "value": {"channel_id": RANDOM, "message_ts": "1.2"}}
    event = {"type": "message", "channel": DM_ANA, "user": ANA, "text": message.text, "ts": message.ts,
             "channel_type": "im", "app_context": {"entities": [viewed]}}  # fmt: skip
    await stack.sender.deliver(stack.sender.envelope(event))
    await stack.settle()
    assert last_question(stack).endswith("viewing the channel <#C0RANDOM0>]")
    await stack.sender.message(DM_ANA, ANA, "usage")  # still the usage command, not a question
    await stack.settle()
    assert len(stack.xai.chat_requests()) == 1
    assert any("Your Grok usage" in m.content for m in stack.slack.bot_messages(DM_ANA))


async def test_a_channel_question_gets_no_viewing_line(stack: Stack) -> None:
    stack.xai.queue_reply(ScriptedReply(text="Hi."))
    await stack.sender.context_changed(ANA, RANDOM)
    await stack.sender.mention(GENERAL, ANA, "hello")  # asked where it is read: the place says enough
    await stack.settle()
    assert "Context:" not in last_question(stack)
