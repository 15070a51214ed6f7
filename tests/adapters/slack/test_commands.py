"""/grok and its subcommands through the real Bolt app: the first word picks the subcommand."""

from __future__ import annotations

from sqlmodel import select

from bot.tables import UsageEvent
from tests.adapters.slack.conftest import ANA, BO, CY, DM_ANA, GENERAL, Stack
from tests.fakes.xai import ScriptedReply


def ephemerals_to(stack: Stack, user: str) -> list[str]:
    return [e["text"] for e in stack.slack.ephemerals if e["user"] == user]


async def test_a_bare_grok_shows_the_help_privately(stack: Stack) -> None:
    delivery = await stack.sender.command("", user=ANA, channel=GENERAL)
    assert delivery.status == 200
    assert delivery.body == ""  # acknowledged at once; the answer follows
    await stack.settle()
    [help_text] = ephemerals_to(stack, ANA)
    assert "*Grok commands*" in help_text  # Markdown bold became mrkdwn bold
    assert "`imagine &lt;prompt&gt;`" in help_text  # mrkdwn escapes < and >
    assert stack.slack.bot_messages(GENERAL) == []


async def test_a_question_is_answered_in_the_channel_and_reset_forgets_it(stack: Stack) -> None:
    stack.xai.queue_reply(ScriptedReply(text="Because of Rayleigh scattering.", tokens_per_second=200))
    await stack.sender.command("why is the sky blue?", user=ANA, channel=GENERAL)
    await stack.settle()
    [answer] = stack.slack.bot_messages(GENERAL)
    assert answer.thread_ts == ""  # a top-level message: a slash command has no message to thread on
    assert answer.content == "Because of Rayleigh scattering."
    assert any(b["type"] == "context_actions" for b in answer.blocks)  # feedback buttons
    assert "why is the sky blue?" in str(stack.xai.chat_requests()[0].json["messages"][-1]["content"])
    # The caller's own conversation continues...
    await stack.sender.command("and at sunset?", user=ANA, channel=GENERAL)
    await stack.settle()
    contents = [str(m["content"]) for m in stack.xai.chat_requests()[1].json["messages"]]
    assert any("Rayleigh" in c for c in contents)
    # ...until reset.
    await stack.sender.command("reset", user=ANA, channel=GENERAL)
    await stack.settle()
    assert "Forgot this conversation (4 messages)" in ephemerals_to(stack, ANA)[-1]
    await stack.sender.command("hello again", user=ANA, channel=GENERAL)
    await stack.settle()
    assert not any("Rayleigh" in str(m["content"]) for m in stack.xai.chat_requests()[2].json["messages"])


async def test_usage_and_admin_quota(stack: Stack) -> None:
    await stack.sender.command("usage", user=ANA, channel=GENERAL)
    await stack.sender.command("quota user:<@U0ANA0001|ana> daily_usd:2", user=BO, channel=GENERAL)
    await stack.sender.command("quota user:<@U0ANA0001|ana> daily_usd:2", user=CY, channel=GENERAL)
    await stack.settle()
    assert "*Your Grok usage*" in ephemerals_to(stack, ANA)[0]
    assert "Only admins" in ephemerals_to(stack, BO)[0]
    assert "now has limits: $2.00 a day" in ephemerals_to(stack, CY)[0]


def pictures_in(stack: Stack, channel: str) -> list[tuple[str, bytes]]:
    """(the message's text, the file's bytes) of each file the bot shared in `channel`."""
    return [
        (message.content, stack.slack.files[file_id].data)
        for message in stack.slack.bot_messages(channel)
        for file_id in message.files
    ]


async def test_usage_sends_its_picture_to_the_callers_direct_messages(stack: Stack) -> None:
    # Slack files cannot be ephemeral: the picture goes to Ana's DM with the bot, with the figures,
    # and the channel shows her (only) the figures and where the picture is.
    await stack.sender.command("usage", user=ANA, channel=GENERAL)
    await stack.settle()
    [(comment, png)] = pictures_in(stack, DM_ANA)
    assert png.startswith(b"\x89PNG") and "*Your Grok usage*" in comment and "Today:" in comment
    [note] = ephemerals_to(stack, ANA)
    assert "*Your Grok usage*" in note and "Today:" in note
    assert f"<https://fake-workspace.slack.com/archives/{DM_ANA}|our direct messages>" in note
    assert stack.slack.bot_messages(GENERAL) == []  # nothing anyone else sees


async def test_usage_in_the_direct_messages_comes_with_its_picture_there(stack: Stack) -> None:
    message, _ = await stack.sender.message(DM_ANA, ANA, "usage")
    await stack.settle()
    [(comment, png)] = pictures_in(stack, DM_ANA)
    assert png.startswith(b"\x89PNG") and "Today:" in comment
    [shared] = [m for m in stack.slack.bot_messages(DM_ANA) if m.files]
    assert shared.thread_ts == message.ts  # in the thread of her message
    assert stack.slack.ephemerals == []  # no note pointing to where she already is


async def test_the_usage_note_falls_back_to_the_response_url(stack: Stack) -> None:
    stack.slack.fail["chat.postEphemeral"].append("channel_not_found")
    await stack.sender.command("usage", user=ANA, channel=GENERAL)
    await stack.settle()
    assert len(pictures_in(stack, DM_ANA)) == 1
    [response] = stack.slack.responses
    assert response["response_type"] == "ephemeral" and "our direct messages" in response["text"]


async def test_subcommand_errors_reach_the_caller(stack: Stack) -> None:
    twice = await stack.sender.command("imagine count:1 count:2 a fox", user=ANA, channel=GENERAL)
    assert twice.status == 200
    await stack.settle()
    # Worded by the engine's one catch site, shown only to the caller; nothing was generated.
    assert "given twice" in ephemerals_to(stack, ANA)[0]
    assert not [r for r in stack.xai.requests if r.path.endswith("/images/generations")]
    await stack.sender.command("digest list", user=ANA, channel=GENERAL)
    await stack.settle()
    assert "not available" in ephemerals_to(stack, ANA)[1]


async def test_imagine_uploads_the_images_with_the_external_upload(stack: Stack) -> None:
    # A 429-like refusal of the last step repeats that step only: no file is uploaded twice.
    stack.slack.fail["files.completeUploadExternal"].append("rate_limited")
    await stack.sender.command("imagine count:2 a red fox", user=ANA, channel=GENERAL)
    await stack.settle()
    calls = [c for c in stack.slack.calls if c.method.startswith("files.")]
    assert [c.method for c in calls if not c.error] == [
        "files.getUploadURLExternal",
        "files.getUploadURLExternal",
        "files.completeUploadExternal",
    ]
    # Arguments travel in form bodies, which every Web API method takes (not only in the URL).
    assert all(c.body == "form" for c in calls)
    uploaded = [f for f in stack.slack.files.values() if f.uploaded and f.shared_to]
    assert len(uploaded) == 2
    assert all(f.data.startswith(b"\x89PNG") or f.data[:3] == b"\xff\xd8\xff" for f in uploaded)
    assert all(f.alt_txt for f in uploaded)
    caption, files = stack.slack.bot_messages(GENERAL)
    assert "a red fox" in caption.content
    assert not caption.content.startswith("_🎨")  # the placeholder was replaced by the caption
    assert sorted(files.files) == sorted(f.id for f in uploaded)


async def test_private_answers_fall_back_to_the_response_url(stack: Stack) -> None:
    # Ephemeral messages need the bot in the channel; the command's response_url does not.
    stack.slack.fail["chat.postEphemeral"].append("channel_not_found")
    await stack.sender.command("help", user=ANA, channel=GENERAL)
    await stack.settle()
    assert stack.slack.ephemerals == []
    [response] = stack.slack.responses
    assert response["response_type"] == "ephemeral" and "*Grok commands*" in response["text"]


async def test_a_command_where_the_bot_cannot_post_is_answered_through_its_response_url(stack: Stack) -> None:
    # A DM between two people or a group DM: /grok works there, chat.postMessage does not.
    stack.slack.fail["chat.postMessage"].extend(["not_in_channel"] * 20)
    answer = "Answered **without** joining:\n\n- one\n- two"
    stack.xai.queue_reply(ScriptedReply(text=answer, tokens_per_second=200))
    await stack.sender.command("are you there?", user=ANA, channel=GENERAL)
    await stack.settle()
    assert stack.slack.bot_messages(GENERAL) == []
    [response] = stack.slack.responses  # one post: a response_url takes five in all
    assert response["response_type"] == "in_channel"
    assert response["blocks"] == [{"type": "markdown", "text": answer}]
    assert "*without*" in response["text"]  # the mrkdwn fallback for notifications
    async with stack.engine.sessions() as session:
        [event] = (await session.exec(select(UsageEvent))).all()
    assert event.cost_ticks > 0  # delivered, so charged


async def test_images_where_the_bot_cannot_post_are_refused_without_a_charge(stack: Stack) -> None:
    stack.slack.fail["chat.postMessage"].extend(["not_in_channel"] * 20)
    stack.slack.fail["files.completeUploadExternal"].extend(["not_in_channel"] * 5)
    await stack.sender.command("imagine a red fox", user=ANA, channel=GENERAL)
    await stack.settle()
    [notice] = stack.slack.responses
    assert notice["response_type"] == "ephemeral" and "/invite @Grok" in notice["text"]
    async with stack.engine.sessions() as session:
        assert (await session.exec(select(UsageEvent))).all() == []


async def test_an_ok_false_rate_limited_is_waited_out_not_refused(stack: Stack) -> None:
    # Slack's posting methods also answer `{"ok": false, "error": "rate_limited"}` (HTTP 200).
    stack.slack.fail["chat.postEphemeral"].append("rate_limited")
    await stack.sender.command("help", user=ANA, channel=GENERAL)
    await stack.settle()
    [ephemeral] = stack.slack.ephemerals
    assert "*Grok commands*" in ephemeral["text"]
    assert stack.slack.responses == []  # not mistaken for a refusal (the response_url fallback)
    assert stack.adapter.api.rate_limited == 1
    assert [c.error for c in stack.slack.calls_to("chat.postEphemeral")] == ["rate_limited", ""]
