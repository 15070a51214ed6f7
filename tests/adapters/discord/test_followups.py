"""Slash answers in channels where the bot may not post: the interaction's app_permissions say so, and
everything past the original response goes out as interaction follow-ups (which need no channel
permission) while the token lasts; where the bot may post, channel messages reply to the previous part."""

from __future__ import annotations

import itertools
import json
import logging
import re
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from adapters.discord.messages import MARKER, MAX_CONTENT
from adapters.discord.platform import CAPABILITIES
from tests.adapters.discord.conftest import Stack
from tests.adapters.discord.test_streaming import rejoin
from tests.fakes.discord import (
    FLAG_EPHEMERAL,
    P_READ_HISTORY,
    P_SEND_MESSAGES,
    P_VIEW_CHANNEL,
    FakeInteraction,
)
from tests.fakes.xai import Fault, ScriptedReply

FENCE = re.compile(r"^```", re.MULTILINE)


def three_part_answer() -> str:
    """About 4,800 characters: prose, a code block cut by the first split, then paragraphs."""
    prose = " ".join(f"Sentence {i} explains one more detail of the algorithm." for i in range(10))
    code = "\n".join(f"    total += step({i})  # accumulate" for i in range(70))
    more = "\n\n".join(
        " ".join(f"Afterwards, note {p}.{i} covers one more edge case." for i in range(7)) for p in range(5)
    )
    block = f"```python\ndef run():\n    total = 0\n{code}\n    return total\n```"
    return f"{prose}\n\n{block}\n\nThat is all.\n\n{more}"


def _shown(stack: Stack, interaction: FakeInteraction) -> list[str]:
    """The answer's messages: the original response, then each follow-up."""
    return [stack.fake.messages[i]["content"] for i in [interaction.original_id, *interaction.followups]]


def _no_channel_posts(stack: Stack) -> None:
    assert not stack.fake.requests_to("POST /channels")
    assert not any(r.status == 403 for r in stack.fake.requests)


@pytest.mark.parametrize(
    "denied",
    [P_SEND_MESSAGES, P_READ_HISTORY, P_VIEW_CHANNEL],
    ids=["send-messages", "read-message-history", "view-channel"],
)
async def test_ask_where_the_bot_may_not_post_continues_in_follow_ups(stack: Stack, denied: int) -> None:
    fake, world = stack.fake, stack.world
    fake.deny_bot(world.random, denied)
    answer = three_part_answer()
    stack.xai.queue_reply(ScriptedReply(text=answer, chunk_chars=40, tokens_per_second=200))

    interaction = await fake.slash(
        "ask", {"prompt": "the algorithm?"}, channel_id=world.random, user_id=world.alice
    )
    await fake.wait_until(
        lambda: bool(interaction.followups) and fake.versions(interaction.followups[-1])[-1].endswith("case.")
    )
    await stack.idle()

    parts = _shown(stack, interaction)
    assert len(parts) == 3
    assert rejoin(parts) == answer  # the whole answer, nothing lost at the splits
    assert all(len(FENCE.findall(p)) % 2 == 0 for p in parts)  # the cut code block is closed and reopened
    ids = [interaction.original_id, *interaction.followups]
    assert all(len(v) <= 2000 for i in ids for v in fake.versions(i))
    assert [m["id"] for m in fake.bot_messages(world.random)] == ids  # public, and nothing else
    assert all("message_reference" not in fake.messages[i] for i in interaction.followups)
    _no_channel_posts(stack)
    sent = _interaction_create(stack)["app_permissions"]  # what told the adapter
    assert sent == str(fake.channel_permissions(world.random, fake.bot_user_id)) and not int(sent) & denied


def _interaction_create(stack: Stack) -> dict[str, Any]:
    """The last INTERACTION_CREATE the fake dispatched."""
    assert stack.fake.session is not None
    frames = [json.loads(frame) for _, frame in stack.fake.session.events]
    data: dict[str, Any] = [f["d"] for f in frames if f["t"] == "INTERACTION_CREATE"][-1]
    return data


async def test_ask_where_the_bot_may_post_continues_with_channel_replies(stack: Stack) -> None:
    fake, world = stack.fake, stack.world
    fake.deny_bot(world.random, P_VIEW_CHANNEL)  # another channel: no effect on this one
    answer = three_part_answer()
    stack.xai.queue_reply(ScriptedReply(text=answer, chunk_chars=40, tokens_per_second=200))

    interaction = await fake.slash(
        "ask", {"prompt": "the algorithm?"}, channel_id=world.general, user_id=world.alice
    )
    await fake.wait_until(
        lambda: any(m["content"].endswith("case.") for m in fake.bot_messages(world.general))
    )
    await stack.idle()

    messages = fake.bot_messages(world.general)
    assert messages[0]["id"] == interaction.original_id and not interaction.followups
    parts = [m["content"] for m in messages]
    assert len(parts) == 3 and rejoin(parts) == answer
    for previous, message in itertools.pairwise(messages):
        assert message["message_reference"]["message_id"] == previous["id"]  # replies to the previous part
    assert len(fake.requests_to("POST /channels")) == 2
    assert not any(r.status == 403 for r in fake.requests)


async def test_a_failure_note_where_the_bot_may_not_post_is_a_follow_up(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake, world = stack.fake, stack.world
    # Messages filled to Discord's 2,000 (without the room kept for links' angle brackets).
    full = replace(CAPABILITIES, max_message_length=MAX_CONTENT - len(MARKER))
    monkeypatch.setattr("adapters.discord.platform.CAPABILITIES", full)
    fake.deny_bot(world.random, P_SEND_MESSAGES)
    text = "".join(f"word{i:04} " for i in range(450))  # 4,050 characters, cut at 3,950
    stack.xai.queue_reply(ScriptedReply(text=text, chunk_chars=10, fault=Fault("cut", after_chunks=395)))

    interaction = await fake.slash(
        "ask", {"prompt": "a long story"}, channel_id=world.random, user_id=world.alice
    )
    await fake.wait_until(lambda: len(interaction.followups) == 2)
    await stack.idle()

    first, second, note = _shown(stack, interaction)
    assert f"{first} {second}" == text[:3950]  # both parts as last streamed, without the marker
    assert note.startswith("⚠️")
    _no_channel_posts(stack)


async def test_past_the_token_an_answer_the_bot_may_not_post_is_logged(
    stack_factory: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    stack: Stack = await stack_factory(clock=lambda: datetime.now(UTC) + timedelta(minutes=16))
    fake, world = stack.fake, stack.world
    fake.deny_bot(world.random, P_SEND_MESSAGES)

    with caplog.at_level(logging.WARNING, logger="adapters.discord"):
        interaction = await fake.slash(
            "ask", {"prompt": "hello?"}, channel_id=world.random, user_id=world.alice
        )
        await fake.wait_until(lambda: interaction.acked)
        await stack.idle()

    [warning] = [r.getMessage() for r in caplog.records if "cannot deliver" in r.getMessage()]
    assert f"interaction {interaction.id} in channel {world.random}" in warning
    assert "token has expired" in warning and "Send Messages" in warning
    assert [m["id"] for m in fake.bot_messages(world.random)] == [interaction.original_id]  # "thinking…"
    _no_channel_posts(stack)


async def test_a_refused_post_reaches_the_person_in_plain_words(stack: Stack) -> None:
    fake, world = stack.fake, stack.world
    stack.xai.queue_reply(ScriptedReply(text=three_part_answer(), chunk_chars=400))
    interaction = await fake.slash(
        "ask", {"prompt": "the algorithm?"}, channel_id=world.general, user_id=world.alice
    )
    # Taken away after the command was sent: its app_permissions still say that the bot may post, so
    # the answer's second part goes to the channel as a bot message, and Discord refuses it.
    fake.deny_bot(world.general, P_SEND_MESSAGES)
    refused = await fake.wait_for_request("POST /channels", status=403)
    # The writer retries the refused part at the channel's edit pace before it gives up.
    await fake.wait_until(lambda: bool(interaction.followups), within=60)
    await stack.idle()

    told = fake.messages[interaction.followups[-1]]
    assert told["flags"] & FLAG_EPHEMERAL  # only the person who asked sees it
    assert told["content"].startswith("I can't post in this channel") and "Send Messages" in told["content"]
    shown = [fake.messages[i]["content"] for i in [interaction.original_id, *interaction.followups]]
    assert not any("50013" in text or "Missing Permissions" in text or "403" in text for text in shown)
    assert refused.route == "POST /channels/{channel_id}/messages"
