"""Streaming through discord.py's real HTTP and gateway stacks: long answers split cleanly, injected 429s
are survived, a dropped gateway resumes mid-answer, and the token stays out of logs."""

from __future__ import annotations

import logging
import re

import pytest

from tests.adapters.discord.conftest import Stack
from tests.fakes.xai import ScriptedReply

FENCE = re.compile(r"^```", re.MULTILINE)


def long_answer() -> str:
    """About 3,300 characters: prose, then a code block that straddles the 2,000-character limit."""
    prose = " ".join(f"Sentence {i} explains one more detail of the algorithm." for i in range(30))
    code = "\n".join(f"    total += step({i})  # accumulate" for i in range(40))
    return f"{prose}\n\n```python\ndef run():\n    total = 0\n{code}\n    return total\n```\n\nThat is all."


def rejoin(parts: list[str]) -> str:
    """The answer from its messages: a split code block is closed at the end of one message and
    reopened (with its language) at the start of the next; undo that and the trimmed separators."""
    text = parts[0]
    for part in parts[1:]:
        if text.endswith("\n```") and part.startswith("```python\n"):
            text = text[: -len("\n```")] + "\n" + part[len("```python\n") :]
        else:
            text = text + "\n\n" + part
    return text


async def test_an_answer_over_2000_characters_is_split_cleanly(stack: Stack) -> None:
    fake, world = stack.fake, stack.world
    answer = long_answer()
    assert len(answer) > 3000
    stack.xai.queue_reply(ScriptedReply(text=answer, chunk_chars=40, tokens_per_second=200))
    asked = await fake.user_message(world.general, world.alice, "show me the algorithm", mention_bot=True)

    await fake.wait_until(
        lambda: any(m["content"].endswith("That is all.") for m in fake.bot_messages(world.general))
    )
    await stack.idle()
    messages = fake.bot_messages(world.general)
    parts = [m["content"] for m in messages]
    assert len(parts) == 2
    assert all(
        len(v) <= 2000 for m in messages for v in fake.versions(m["id"])
    )  # never over, not even mid-stream
    assert all(len(FENCE.findall(p)) % 2 == 0 for p in parts)  # every message's code blocks are closed
    assert rejoin(parts) == answer.strip()
    assert messages[0]["message_reference"]["message_id"] == asked["id"]
    assert messages[1]["message_reference"]["message_id"] == messages[0]["id"]  # continues the previous one
    assert not any(r.status == 400 for r in fake.requests)


async def test_an_injected_429_on_an_edit_is_survived(stack: Stack) -> None:
    fake, world = stack.fake, stack.world
    answer = "One. Two. Three. Four. Five. Six. Seven. Eight. Nine. Ten. Eleven. Twelve."
    stack.xai.queue_reply(ScriptedReply(text=answer, chunk_chars=3, tokens_per_second=20))
    fake.inject_429("PATCH", r"^/channels/\d+/messages/\d+$", count=2, retry_after=0.3)

    await fake.user_message(world.general, world.alice, "count to twelve", mention_bot=True)

    await fake.wait_until(lambda: any(m["content"] == answer for m in fake.bot_messages(world.general)))
    assert len(fake.rate_limited) == 2  # both 429s were answered, with Via and a JSON body...
    edits = fake.requests_to("PATCH /channels")
    assert [r.status for r in edits].count(429) == 2 and edits[-1].status == 200  # ...and retried
    assert [m["content"] for m in fake.bot_messages(world.general)] == [answer]


async def test_a_dropped_gateway_resumes_mid_answer(stack: Stack) -> None:
    fake, world = stack.fake, stack.world
    answer = " ".join(f"word{i}" for i in range(60))
    stack.xai.queue_reply(ScriptedReply(text=answer, chunk_chars=5, tokens_per_second=80))
    await fake.user_message(world.general, world.alice, "talk for a while", mention_bot=True)
    await fake.wait_until(lambda: any("⚪" in m["content"] for m in fake.bot_messages(world.general)))

    await fake.drop_gateway(code=None)  # TCP cut mid-answer: the client sees 1006
    stack.xai.queue_reply(ScriptedReply(text="Caught up."))
    await fake.user_message(world.general, world.bob, "did you miss me?", mention_bot=True)  # while away

    await fake.wait_until(lambda: any(m["content"] == answer for m in fake.bot_messages(world.general)))
    await fake.wait_until(lambda: any(m["content"] == "Caught up." for m in fake.bot_messages(world.general)))
    assert fake.session is not None and fake.session.resumes == 1 and fake.identifies == 1
    assert fake.gateway_connections == ["/gateway/", "/resume-gateway/"]  # resumed at resume_gateway_url
    assert stack.adapter.ready()


async def test_a_gateway_close_4000_resumes_too(stack: Stack) -> None:
    fake, world = stack.fake, stack.world
    await fake.drop_gateway(code=4000)
    await fake.wait_until(lambda: fake.session is not None and fake.session.resumes == 1)
    stack.xai.queue_reply(ScriptedReply(text="Still here."))
    await fake.user_message(world.general, world.alice, "still there?", mention_bot=True)
    await fake.wait_until(
        lambda: any(m["content"] == "Still here." for m in fake.bot_messages(world.general))
    )
    assert fake.identifies == 1


async def test_the_bot_token_never_appears_in_logs(stack: Stack, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    fake, world = stack.fake, stack.world
    stack.xai.queue_reply(ScriptedReply(text="Logged safely."))
    await fake.user_message(world.general, world.alice, "hi", mention_bot=True)
    await fake.slash("ask", {"prompt": "hi again"}, channel_id=world.general, user_id=world.alice)
    await fake.wait_until(lambda: len(fake.bot_messages(world.general)) == 2)
    await fake.drop_gateway(code=4000)  # a RESUME carries the token too
    await fake.wait_until(lambda: fake.session is not None and fake.session.resumes == 1)
    await stack.idle()
    assert len(caplog.records) > 20  # discord.py's debug logging was on
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert fake.token not in logged
    assert fake.token.split(".")[0] not in logged
