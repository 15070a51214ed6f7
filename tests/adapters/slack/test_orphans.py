"""Closing an answer a dead process left in progress (issue 18): what SlackPlatform.close_orphan
does when the stream is still open, when Slack already ended it, and when the message is gone."""

from __future__ import annotations

from bot.platform import OpenMessage, Place
from bot.wording import INTERRUPTED
from tests.adapters.slack.conftest import ANA, DM_ANA, GENERAL, Stack
from tests.fakes.slack import TEAM_ID


async def test_a_stream_still_open_is_stopped_with_the_note(stack: Stack) -> None:
    question = stack.slack.post_user_message(DM_ANA, ANA, "hi")
    place = Place("slack", TEAM_ID, DM_ANA, question.ts)
    ts = await stack.adapter.platform.messages.start_stream(place, question.ts, "The answer so far")
    await stack.adapter.platform.close_orphan(OpenMessage(place, ts, ts), INTERRUPTED)
    message = stack.slack.message(DM_ANA, ts)
    assert not message.streaming
    assert message.content == f"The answer so far\n\n⚠️ {INTERRUPTED}"


async def test_a_stream_slack_ended_is_read_back_and_edited(stack: Stack) -> None:
    question = stack.slack.post_user_message(DM_ANA, ANA, "hi")
    place = Place("slack", TEAM_ID, DM_ANA, question.ts)
    ts = await stack.adapter.platform.messages.start_stream(place, question.ts, "The answer so far")
    stack.slack.expire_streams()  # Slack ends a stream five minutes after its start
    await stack.adapter.platform.close_orphan(OpenMessage(place, ts, ts), INTERRUPTED)
    assert stack.slack.message(DM_ANA, ts).content == f"The answer so far\n\n⚠️ {INTERRUPTED}"
    assert stack.slack.calls_to("chat.update")


async def test_an_edited_answer_loses_its_marker_and_a_message_that_cannot_be_read_gets_a_note(
    stack: Stack,
) -> None:
    question = stack.slack.post_user_message(GENERAL, ANA, "hi")
    place = Place("slack", TEAM_ID, GENERAL, question.ts)
    ts = await stack.adapter.platform.messages.post_markdown(place, question.ts, "Half an answer ▍")
    await stack.adapter.platform.close_orphan(OpenMessage(place, ts), INTERRUPTED)
    assert stack.slack.message(GENERAL, ts).content == f"Half an answer\n\n⚠️ {INTERRUPTED}"

    gone = Place("slack", TEAM_ID, GENERAL, question.ts)
    await stack.adapter.platform.close_orphan(OpenMessage(gone, "1.000001"), INTERRUPTED)
    last = stack.slack.bot_messages(GENERAL, thread_ts=question.ts)[-1]
    assert last.content == f"⚠️ {INTERRUPTED}"  # said in the thread instead
