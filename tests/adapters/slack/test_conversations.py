"""Conversations through the real Bolt app over loopback HTTP: mentions, thread follow-ups, DMs."""

from __future__ import annotations

from bot.platform import Place
from tests.adapters.slack.conftest import ANA, BO, DM_ANA, GENERAL, Stack
from tests.fakes.slack import BOT_USER_ID
from tests.fakes.xai import ScriptedReply


async def test_a_mention_is_answered_in_its_thread_with_the_model_text(stack: Stack) -> None:
    answer = "Paris is the **capital** of France.\n\n```python\nprint('hi')\n```"
    stack.xai.queue_reply(ScriptedReply(text=answer, tokens_per_second=400))
    message, deliveries = await stack.sender.mention(GENERAL, ANA, "what is the capital of France?")
    assert [d.status for d in deliveries] == [200, 200]
    await stack.settle()
    answers = stack.answers(GENERAL, message.ts)
    assert len(answers) == 1
    assert answers[0].content == answer
    assert answers[0].thread_ts == message.ts
    assert not answers[0].streaming
    # Asked once although Slack sent both app_mention and the message event.
    assert len(stack.xai.chat_requests()) == 1
    user_turn = stack.xai.chat_requests()[0].json["messages"][-1]
    assert "what is the capital of France?" in str(user_turn["content"])
    assert BOT_USER_ID not in str(user_turn["content"])


async def test_a_thread_follow_up_is_answered_without_a_mention_and_with_history(stack: Stack) -> None:
    stack.xai.queue_reply(ScriptedReply(text="The answer is 4."))
    message, _ = await stack.sender.mention(GENERAL, ANA, "what is 2 + 2?")
    await stack.settle()
    stack.xai.queue_reply(ScriptedReply(text="Then it is 8."))
    await stack.sender.message(GENERAL, BO, "and doubled?", thread_ts=message.ts)
    await stack.settle()
    assert [m.content for m in stack.answers(GENERAL, message.ts)] == ["The answer is 4.", "Then it is 8."]
    second = stack.xai.chat_requests()[1].json["messages"]
    contents = [str(m["content"]) for m in second]
    assert any("what is 2 + 2?" in c for c in contents)
    assert any("The answer is 4." in c for c in contents)
    assert "and doubled?" in contents[-1]


async def test_a_group_dm_is_a_channel_with_threads(stack: Stack) -> None:
    stack.slack.add_channel("G0GROUPDM1", is_mpim=True)
    stack.xai.queue_reply(ScriptedReply(text="Hi both."))
    message, _ = await stack.sender.mention("G0GROUPDM1", ANA, "hello")
    await stack.sender.message("G0GROUPDM1", BO, "unaddressed, outside the thread")
    await stack.settle()
    stack.xai.queue_reply(ScriptedReply(text="Still here."))
    await stack.sender.message("G0GROUPDM1", BO, "and you?", thread_ts=message.ts)
    await stack.settle()
    assert [m.content for m in stack.answers("G0GROUPDM1", message.ts)] == ["Hi both.", "Still here."]
    assert len(stack.xai.chat_requests()) == 2


async def test_unaddressed_channel_chatter_is_ignored(stack: Stack) -> None:
    top, _ = await stack.sender.message(GENERAL, ANA, "lunch anyone?")
    await stack.sender.message(GENERAL, BO, "sure", thread_ts=top.ts)
    await stack.settle()
    assert stack.xai.chat_requests() == []
    assert stack.slack.bot_messages(GENERAL) == []


async def test_a_direct_message_is_answered_in_its_thread(stack: Stack) -> None:
    stack.xai.queue_reply(ScriptedReply(text="Hello Ana & co <3"))
    message, delivery = await stack.sender.message(DM_ANA, ANA, "hi & <b>hello</b>")
    assert delivery.status == 200
    await stack.settle()
    answers = stack.answers(DM_ANA, message.ts)
    assert [a.content for a in answers] == ["Hello Ana & co <3"]
    # Incoming text arrives escaped by Slack; the model sees it unescaped.
    assert stack.xai.chat_requests()[0].json["messages"][-1]["content"].endswith("hi & <b>hello</b>")
    # A DM thread reply continues the conversation.
    stack.xai.queue_reply(ScriptedReply(text="Still here."))
    await stack.sender.message(DM_ANA, ANA, "still there?", thread_ts=message.ts)
    await stack.settle()
    assert [a.content for a in stack.answers(DM_ANA, message.ts)] == ["Hello Ana & co <3", "Still here."]


async def test_a_mention_inside_a_conversation_thread_is_answered_once(stack: Stack) -> None:
    stack.xai.queue_reply(ScriptedReply(text="First."))
    message, _ = await stack.sender.mention(GENERAL, ANA, "start")
    await stack.settle()
    # Slack sends app_mention and message for this reply; the thread is already a conversation.
    stack.xai.queue_reply(ScriptedReply(text="Second."))
    await stack.sender.mention(GENERAL, BO, "and you?", thread_ts=message.ts)
    await stack.settle()
    assert [m.content for m in stack.answers(GENERAL, message.ts)] == ["First.", "Second."]
    assert len(stack.xai.chat_requests()) == 2


async def test_replying_under_a_slash_command_answer_continues_it(stack: Stack) -> None:
    stack.xai.queue_reply(ScriptedReply(text="Forty-two."))
    await stack.sender.command("what is the answer?", user=ANA, channel=GENERAL)
    await stack.settle()
    [answer] = stack.slack.bot_messages(GENERAL)
    stack.xai.queue_reply(ScriptedReply(text="Six times seven."))
    await stack.sender.message(GENERAL, ANA, "why?", thread_ts=answer.ts)
    await stack.settle()
    assert [m.content for m in stack.answers(GENERAL, answer.ts)] == ["Six times seven."]
    contents = [str(m["content"]) for m in stack.xai.chat_requests()[1].json["messages"]]
    assert any("Forty-two." in c for c in contents)


async def test_display_names_reach_the_model(stack: Stack) -> None:
    stack.xai.queue_reply(ScriptedReply(text="Hi."))
    await stack.sender.mention(GENERAL, ANA, "who am I?")
    await stack.settle()
    assert "Ana B." in str(stack.xai.chat_requests()[0].json["messages"])


async def test_channel_history_for_digests_pages_through_slack(stack: Stack) -> None:
    from datetime import UTC, datetime, timedelta

    since = datetime.now(UTC) - timedelta(seconds=1)
    for index in range(230):
        stack.slack.post_user_message(GENERAL, ANA if index % 2 else BO, f"note {index} &amp; more")
    until = datetime.now(UTC) + timedelta(seconds=1)
    place = Place("slack", stack.slack.team_id, GENERAL)
    history = await stack.adapter.platform.channel_history(place, since=since, until=until)
    assert [m.text for m in history] == [f"note {i} & more" for i in range(230)]
    assert {m.author.name for m in history} == {"Ana B.", "Bo Chen"}
    assert history[0].link.startswith("https://fake-workspace.slack.com/archives/C0GENERAL/p")
    assert len(stack.slack.calls_to("conversations.history")) == 2  # two pages of 200


async def test_channel_history_under_slacks_2025_limit_for_non_marketplace_apps(stack: Stack) -> None:
    """platforms.md S4: one history page a minute (a second here), 15 messages a page at most."""
    from datetime import UTC, datetime, timedelta

    stack.slack.history_limited, stack.slack.history_window = True, 1.0
    since = datetime.now(UTC) - timedelta(seconds=1)
    for index in range(40):
        stack.slack.post_user_message(GENERAL, ANA, f"note {index}")
    until = datetime.now(UTC) + timedelta(seconds=1)
    place = Place("slack", stack.slack.team_id, GENERAL)
    history = await stack.adapter.platform.channel_history(place, since=since, until=until)
    assert [m.text for m in history] == [f"note {i}" for i in range(40)]  # nothing lost to the cap
    pages = stack.slack.calls_to("conversations.history")
    assert len(pages) == 3  # 15 + 15 + 10
    # One page a second: each page after the first drew a 429, waited out rather than hammered.
    assert len(pages) - 1 <= stack.slack.rate_limited <= 2 * len(pages)
