"""SlackPlatform's verbs on their own: texts split as the engine splits answers, a command's
response_url used only by that command's platform, and plain words where Slack cannot be reached."""

from __future__ import annotations

import pytest

from adapters.slack.refusals import NotAMember
from bot.errors import PlatformError
from bot.platform import Attachment, Place
from bot.streaming.layout import open_fence
from tests.adapters.slack.conftest import ANA, GENERAL, Stack
from tests.fakes.xai import ScriptedReply

PLACE = Place("slack", "T0FAKE001", GENERAL, "")


def long_text_with_code() -> str:
    code = (
        "```python\n"
        + "\n".join(f"value_{i} = {i} * 2  # a line of the example" for i in range(160))
        + "\n```"
    )
    return "\n\n".join([f"Paragraph {i}: " + "words to read " * 40 for i in range(4)] + [code, "The end."])


async def test_a_long_private_text_is_split_without_breaking_its_code_block(stack: Stack) -> None:
    text = long_text_with_code()
    assert len(text) > 2 * 3_900  # more than two ephemeral messages' worth of mrkdwn
    await stack.adapter.platform.post_text(PLACE, text, private_to=ANA)
    pieces = [e["text"] for e in stack.slack.ephemerals]
    assert len(pieces) >= 3
    assert all(len(piece) <= 3_900 for piece in pieces)
    # The code block spans pieces: each piece closes it, and the next one reopens it.
    assert all(open_fence(piece) is None for piece in pieces)
    assert sum(1 for piece in pieces if "```" in piece) >= 2
    assert "".join(pieces).count("value_159 = 159 * 2") == 1


async def test_only_the_commands_own_platform_answers_through_its_response_url(stack: Stack) -> None:
    stack.slack.fail["chat.postMessage"].extend(["not_in_channel"] * 20)
    stack.xai.queue_reply(ScriptedReply(text="Relayed."))
    await stack.sender.command("are you there?", user=ANA, channel=GENERAL)
    await stack.settle()
    assert [r["response_type"] for r in stack.slack.responses] == ["in_channel"]
    # The long-lived platform (digests, deferred answers) has no command's response_url to fall back on.
    reply = await stack.adapter.platform.start_reply(PLACE)
    with pytest.raises(NotAMember) as refused:
        await reply.update("Not relayed.")
    assert "/invite @Grok" in refused.value.user_text
    assert len(stack.slack.responses) == 1


async def test_a_stopped_adapter_says_so_in_plain_words(stack: Stack) -> None:
    await stack.adapter.stop()
    with pytest.raises(PlatformError) as refused:
        await stack.adapter.platform.download(
            Attachment("a.png", "image/png", 10, url=f"{stack.slack.base_url}x")
        )
    assert "not started" in str(refused.value)  # for the log
    assert refused.value.user_text and "adapter" not in refused.value.user_text  # for the person
