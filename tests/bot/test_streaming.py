"""Streaming into a platform: pacing, merging, splitting, shared budgets, 429s and failures."""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from dataclasses import replace

import pytest

from bot.errors import AnswerStopped, PlatformError
from bot.platform import Place
from bot.streaming import EditBudget, EditBudgets, StreamWriter, open_fence, split_message
from tests.fakes.platform import DEFAULT_CAPABILITIES, FakePlatform

PLACE = Place("fake", "w1", "c1", "t1")


def fences_balanced(part: str) -> bool:
    return open_fence(part) is None


# -- split_message ----------------------------------------------------------------------------------


def test_short_text_is_one_part() -> None:
    assert split_message("hello world", 100) == ["hello world"]


def test_split_prefers_paragraphs_and_keeps_every_character() -> None:
    text = "\n\n".join(f"Paragraph {i} " + "word " * 30 for i in range(10))
    parts = split_message(text, 400)
    assert all(len(p) <= 400 for p in parts)
    assert "".join(parts) == text
    assert all(p.endswith("\n\n") for p in parts[:-1])


def test_split_never_leaves_a_code_block_open() -> None:
    code = "```python\n" + "".join(f"value_{i} = {i} * 2\n" for i in range(200)) + "```\n"
    text = "Here is the code:\n\n" + code + "\nThat is all."
    parts = split_message(text, 500)
    assert len(parts) > 3
    assert all(len(p) <= 500 for p in parts)
    assert all(fences_balanced(p) for p in parts)
    for part in parts[1:-1]:
        assert part.startswith("```python\n")
    # Removing the added closing/reopening fences gives back the original text.
    rebuilt = parts[0]
    for part in parts[1:]:
        rebuilt = rebuilt.removesuffix("\n```") + "\n" + part.removeprefix("```python\n")
    assert rebuilt.replace("\n\n", "\n") == text.replace("\n\n", "\n")


def test_split_cuts_unbroken_text_hard() -> None:
    parts = split_message("x" * 1000, 300)
    assert [len(p) for p in parts] == [300, 300, 300, 100]


# -- StreamWriter -------------------------------------------------------------------------------------


async def stream(
    platform: FakePlatform, chunks: list[str], *, delay: float = 0.0, interval: float = 0.05
) -> StreamWriter:
    writer = StreamWriter(platform, PLACE, budgets=EditBudgets(), interval=interval)
    await writer.open()
    for chunk in chunks:
        writer.append(chunk)
        await asyncio.sleep(delay)
    await writer.finish()
    return writer


async def test_streamed_text_lands_exactly_and_final_has_no_marker() -> None:
    platform = FakePlatform()
    chunks = [f"token{i} " for i in range(200)]
    await stream(platform, chunks, delay=0.001)
    assert platform.visible_text() == "".join(chunks)
    assert platform.last.final
    assert platform.events[-1].kind == "finish"


async def test_first_text_goes_out_immediately_then_edits_are_paced() -> None:
    platform = FakePlatform()
    interval = 0.05
    await stream(platform, [f"w{i} " for i in range(100)], delay=0.002, interval=interval)
    edits = platform.edits_of(platform.last.id)
    updates = [e for e in edits if e.kind == "update"]
    assert updates[0].text == "w0 "  # the very first delta, not a batch
    gaps = [b.at - a.at for a, b in itertools.pairwise(updates)]
    assert min(gaps) >= interval * 0.95
    # One edit per interval at most, however long the machine took to stream: fewer than deltas.
    span = updates[-1].at - updates[0].at
    assert len(updates) <= span / interval + 2
    assert len(updates) < 100


async def test_long_answer_continues_in_new_messages_that_reply_to_the_previous() -> None:
    platform = FakePlatform(capabilities=replace(DEFAULT_CAPABILITIES, max_message_length=300))
    text = " ".join(f"word{i}" for i in range(400))
    await stream(platform, [text[i : i + 7] for i in range(0, len(text), 7)], delay=0)
    assert len(platform.messages) > 5
    assert all(len(m.text) <= 300 for m in platform.messages)
    assert all(m.final for m in platform.messages)
    assert "".join(m.text for m in platform.messages) == text
    for previous, message in itertools.pairwise(platform.messages):
        assert message.reply_to == previous.id


async def test_code_block_split_while_streaming_stays_balanced() -> None:
    platform = FakePlatform(capabilities=replace(DEFAULT_CAPABILITIES, max_message_length=200))
    text = "Code:\n```js\n" + "".join(f"let v{i} = {i};\n" for i in range(60)) + "```\nDone."
    await stream(platform, [text[i : i + 5] for i in range(0, len(text), 5)], delay=0.0005)
    assert len(platform.messages) > 3
    assert all(len(m.text) <= 200 for m in platform.messages)
    assert all(open_fence(m.text) is None for m in platform.messages)
    assert platform.messages[1].text.startswith("```js\n")


async def test_a_429_slows_the_scope_and_the_final_text_still_lands() -> None:
    platform = FakePlatform(fail_edits=3, retry_after=0.02)
    chunks = [f"t{i} " for i in range(50)]
    await stream(platform, chunks, delay=0.002)
    assert platform.rate_limited == 3
    assert platform.visible_text() == "".join(chunks)
    assert platform.last.final


async def test_final_edit_retries_through_429s() -> None:
    platform = FakePlatform(retry_after=0.01)
    writer = StreamWriter(platform, PLACE, budgets=EditBudgets(), interval=0.01)
    await writer.open()
    writer.append("complete answer")
    await asyncio.sleep(0.05)
    platform.fail_edits = 2  # the final edit draws two 429s
    await writer.finish()
    assert platform.last.final and platform.last.text == "complete answer"


async def test_failure_keeps_what_was_shown_and_says_what_happened() -> None:
    platform = FakePlatform()
    writer = StreamWriter(platform, PLACE, budgets=EditBudgets(), interval=0.01)
    await writer.open()
    writer.append("partial ans")
    await asyncio.sleep(0.03)
    writer.append("wer")
    await writer.fail("connection dropped")
    assert platform.last.text == "partial answer"
    assert platform.last.failed == "connection dropped"


async def test_fifty_concurrent_streams_share_one_scope_budget_without_429s() -> None:
    # 100 edits a second in the scope, burst 5: the fake answers 429 past that in any 1 s window.
    caps = replace(DEFAULT_CAPABILITIES, scope_edits_per_minute=6000, scope_burst=5, edit_interval=0.05)
    platform = FakePlatform(capabilities=caps, enforce_scope_budget=True)
    budgets = EditBudgets()
    texts = [[f"s{n}w{i} " for i in range(40)] for n in range(50)]

    async def one(chunks: list[str]) -> None:
        writer = StreamWriter(platform, PLACE, budgets=budgets)
        await writer.open()
        for chunk in chunks:
            writer.append(chunk)
            await asyncio.sleep(random.uniform(0.001, 0.01))
        await writer.finish()

    await asyncio.gather(*(one(chunks) for chunks in texts))
    assert platform.rate_limited == 0
    assert all(message.final for message in platform.messages)
    assert sorted(m.text for m in platform.messages) == sorted("".join(chunks) for chunks in texts)
    times = sorted(e.at for e in platform.events if e.kind in {"update", "finish"})
    busiest = max(sum(1 for t in times if start <= t < start + 1.0) for start in times)
    assert busiest <= 100 + 5


async def test_edit_budget_is_first_come_first_served() -> None:
    budget = EditBudget(per_minute=600, burst=1)
    order: list[int] = []

    async def take(n: int) -> None:
        await budget.acquire()
        order.append(n)

    await asyncio.gather(*(take(n) for n in range(5)))
    assert order == [0, 1, 2, 3, 4]


async def test_edit_budget_pauses_after_slow_down() -> None:
    clock_time = [0.0]
    budget = EditBudget(per_minute=6000, burst=5, clock=lambda: clock_time[0])
    budget.slow_down(0.0)
    assert budget.rate_limited == 1
    with pytest.raises(asyncio.TimeoutError):
        # No tokens and a frozen clock: acquiring must wait, not pass.
        await asyncio.wait_for(budget.acquire(), 0.05)


async def test_interim_edit_errors_are_not_fatal() -> None:
    class Flaky(FakePlatform):
        def check_budget(self, message):  # type: ignore[no-untyped-def]
            if not message.final and message.edits == 1:
                message.edits += 1
                raise PlatformError("transient")
            super().check_budget(message)

    platform = Flaky()
    await stream(platform, [f"x{i} " for i in range(30)], delay=0.003)
    assert platform.last.final
    assert platform.last.text == "".join(f"x{i} " for i in range(30))


async def test_an_answer_stopped_in_the_chat_shows_nothing_more() -> None:
    class Stoppable(FakePlatform):
        def check_budget(self, message):  # type: ignore[no-untyped-def]
            if message.edits >= 2:  # the person pressed stop after the second edit
                raise AnswerStopped("stopped")
            super().check_budget(message)

    platform = Stoppable()
    writer = StreamWriter(platform, PLACE, budgets=EditBudgets(), interval=0.02)
    await writer.open()
    for index in range(40):
        writer.append(f"s{index} ")
        await asyncio.sleep(0.003)
    assert writer.stopped
    with pytest.raises(AnswerStopped):
        await writer.finish()
    await writer.fail("must not be shown")
    [message] = platform.messages
    assert not message.final and not message.failed
    assert writer.shown_text == message.text  # what the chat showed when it stopped
    assert writer.text.startswith(message.text) and len(writer.text) > len(message.text)


async def test_the_final_text_lands_at_once_not_after_the_edit_interval() -> None:
    platform = FakePlatform()
    writer = StreamWriter(platform, PLACE, budgets=EditBudgets(), interval=10.0)
    await writer.open()
    writer.append("first words ")
    await asyncio.sleep(0.05)  # the first edit went out; the next may not come for a second
    writer.append("and the last ones")
    ended = time.perf_counter()
    await writer.finish()
    final = platform.events[-1]
    assert final.kind == "finish" and final.text == "first words and the last ones"
    assert final.at - ended < 5.0  # not the 10 s edit interval


async def test_a_long_stall_moves_the_answer_to_a_new_message_instead_of_hanging() -> None:
    platform = FakePlatform(retry_after=30.0)  # e.g. discord.py's max_ratelimit_timeout tripping
    writer = StreamWriter(platform, PLACE, budgets=EditBudgets(), interval=0.02)
    await writer.open()
    writer.append("shown before the stall. ")
    await asyncio.sleep(0.05)
    platform.fail_edits = 1
    started = time.perf_counter()
    for i in range(10):
        writer.append(f"more{i} ")
        await asyncio.sleep(0.01)
    await writer.finish()
    assert time.perf_counter() - started < 5  # nobody waited out the 30 s
    assert len(platform.messages) == 2
    assert platform.messages[1].reply_to == platform.messages[0].id
    assert "".join(m.text for m in platform.messages) == "shown before the stall. " + "".join(
        f"more{i} " for i in range(10)
    )
    assert platform.messages[1].final
    await asyncio.sleep(0.01)  # the left-behind message is finished in the background
    assert platform.messages[0].final and platform.messages[0].text == "shown before the stall. "


def test_option_only_commands_followed_by_words_are_questions() -> None:
    from bot.platform import parse_command_text

    assert parse_command_text("help me write a poem").name == "ask"
    assert parse_command_text("help me write a poem").text == "help me write a poem"
    assert parse_command_text("usage of semicolons?").name == "ask"
    assert parse_command_text("reset my router?").name == "ask"
    usage = parse_command_text("usage period:month")
    assert (usage.name, dict(usage.options)) == ("usage", {"period": "month"})
    assert parse_command_text("imagine count:2 a red fox").text == "a red fox"
    assert parse_command_text("").name == "help"
