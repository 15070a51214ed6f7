"""Streaming into a platform: pacing, merging, splitting, shared budgets, 429s and failures.

Where text is cut and what each message shows is tested without time in test_layout.py."""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections.abc import Callable
from dataclasses import replace

import pytest

from bot.errors import AnswerStopped, PlatformError
from bot.platform import Place
from bot.streaming import EditBudget, EditBudgets, StreamWriter, Turn
from bot.streaming.layout import open_fence
from tests.fakes.platform import DEFAULT_CAPABILITIES, FakePlatform

PLACE = Place("fake", "w1", "c1", "t1")


# -- StreamWriter -------------------------------------------------------------------------------------


async def opened(platform: FakePlatform, interval: float, **hooks: Callable[[], None]) -> StreamWriter:
    """A writer into PLACE with its first message open."""
    writer = StreamWriter(platform, PLACE, budgets=EditBudgets(), interval=interval, **hooks)
    await writer.open()
    return writer


async def stream(
    platform: FakePlatform, chunks: list[str], *, delay: float = 0.0, interval: float = 0.05
) -> StreamWriter:
    writer = await opened(platform, interval)
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
    writer = await opened(platform, 0.01)
    writer.append("complete answer")
    await platform.wait_until(lambda: platform.last.text == "complete answer")  # shown by an interim edit
    platform.fail_edits = 2  # the final edit draws two 429s
    await writer.finish()
    assert platform.last.final and platform.last.text == "complete answer"


async def test_failure_keeps_what_was_shown_and_says_what_happened() -> None:
    platform = FakePlatform()
    writer = await opened(platform, 0.01)
    writer.append("partial ans")
    await platform.wait_until(lambda: platform.last.text == "partial ans")
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


class ManualTime:
    """A clock that moves only when the test moves it, and a sleep that ends only then."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []  # how long each sleep asked for
        self.asleep = asyncio.Event()  # someone sleeps now
        self._moved = asyncio.Event()

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self._moved.clear()
        self.asleep.set()
        await self._moved.wait()

    def advance(self, seconds: float) -> None:
        """Move the clock on and wake the sleeper."""
        self.now += seconds
        self.asleep.clear()
        self._moved.set()

    async def slept(self, count: int) -> None:
        """Return once `count` sleeps have begun in all."""
        while len(self.sleeps) < count:
            self.asleep.clear()
            await self.asleep.wait()


async def test_edit_budget_pauses_after_slow_down() -> None:
    manual = ManualTime()
    budget = EditBudget(per_minute=6000, burst=5, clock=manual.clock, sleep=manual.sleep)
    await budget.acquire()  # the burst serves at once
    assert manual.sleeps == []
    budget.slow_down(2.0)
    assert budget.rate_limited == 1
    waiting = asyncio.create_task(budget.acquire())
    await manual.asleep.wait()
    assert manual.sleeps == [2.0]  # acquiring must wait out the pause, not pass
    manual.advance(1.5)
    await manual.asleep.wait()  # woken before the pause ended, it sleeps the rest
    assert manual.sleeps == [2.0, 0.5] and not waiting.done()
    manual.advance(0.5)
    await waiting  # the pause is over: served at once, with the tokens refilled
    assert manual.sleeps == [2.0, 0.5]


async def test_edit_budget_halves_its_rate_after_slow_down() -> None:
    manual = ManualTime()
    budget = EditBudget(per_minute=6000, burst=1, clock=manual.clock, sleep=manual.sleep)  # 100/s

    async def wait_for_token() -> float:
        waiting = asyncio.create_task(budget.acquire())
        await manual.asleep.wait()
        manual.advance(manual.sleeps[-1])
        await waiting
        return manual.sleeps[-1]

    await budget.acquire()
    assert await wait_for_token() == pytest.approx(0.01)  # one token at the full rate
    budget.slow_down(0.0)
    slowed = await wait_for_token()
    assert slowed == pytest.approx(1 / (50 * 1.05))  # half the rate, recovering 5 % a refill
    assert 0.01 < await wait_for_token() < slowed  # on its way back to the full rate


async def test_finals_go_before_first_words_before_interim_edits_waiting_for_the_budget() -> None:
    """Issue 15, part 3: the scheduler finishes answers in the order their streams ended, ahead of
    other answers' first words, which go before interim edits; first come, first served within each."""
    budget = EditBudget(per_minute=6000, burst=1)  # a token every 10 ms
    await budget.acquire()  # the only token
    order: list[str] = []

    async def take(name: str, turn: Turn) -> None:
        await budget.acquire(turn)
        order.append(name)

    waiting = [("interim 1", Turn.INTERIM), ("interim 2", Turn.INTERIM), ("first words", Turn.FIRST)]
    waiting += [("final 1", Turn.FINAL), ("final 2", Turn.FINAL)]
    await asyncio.gather(*(take(name, turn) for name, turn in waiting))  # they queue in this order
    assert order == ["final 1", "final 2", "first words", "interim 1", "interim 2"]


async def test_an_answer_ended_before_its_first_post_goes_out_whole_in_one_call() -> None:
    """Issue 15, part 3: first words still waiting for the posting budget when the stream ends are
    dropped: the final posts the whole answer, one call instead of a post and an edit."""
    manual = ManualTime()
    caps = replace(DEFAULT_CAPABILITIES, scope_posts_apart=True, scope_edits_per_minute=60, scope_burst=1)
    platform = FakePlatform(capabilities=caps, posts_on_first_call=True)
    budgets = EditBudgets(clock=manual.clock, sleep=manual.sleep)
    first = StreamWriter(platform, Place("fake", "w1", "c1", "a"), budgets=budgets, interval=0.01)
    await first.open()
    first.append("the first answer")
    await platform.wait_until(lambda: platform.messages[0].edits == 1)  # took the only post
    second = StreamWriter(platform, Place("fake", "w1", "c1", "b"), budgets=budgets, interval=0.01)
    await second.open()
    second.append("the second ")
    await manual.slept(1)  # its first words wait for the posting budget
    second.append("answer, whole")
    finishing = asyncio.create_task(second.finish())
    await manual.slept(2)  # the final waits instead
    manual.advance(1.0)
    await finishing
    message = platform.messages[1]
    assert (message.text, message.final, message.edits) == ("the second answer, whole", True, 1)
    await first.finish()  # edits draw from their own budget: not held up by the posts
    assert platform.messages[0].final and platform.messages[0].edits == 2


def test_a_share_scales_an_edit_budget() -> None:
    """Issue 15, part 2: beside another instance, an edit budget serves half the burst."""
    budgets = EditBudgets()
    budgets.set_share(0.5)
    platform = FakePlatform(capabilities=replace(DEFAULT_CAPABILITIES, scope_burst=6))
    budget = budgets.for_place(platform, PLACE)
    assert budget.share == 0.5
    taken = 0
    while budget._tokens >= 1.0:  # what it serves at once
        budget._tokens -= 1.0
        taken += 1
    assert taken == 3
    budgets.set_share(1.0)
    assert budget.share == 1.0


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
    pressed = asyncio.Event()

    class Stoppable(FakePlatform):
        def check_budget(self, message):  # type: ignore[no-untyped-def]
            if message.edits >= 2:  # the person pressed stop after the second edit
                pressed.set()
                raise AnswerStopped("stopped")
            super().check_budget(message)

    platform = Stoppable()
    writer = await opened(platform, 0.02)
    writer.append("s0 ")
    await platform.wait_until(lambda: platform.last.edits == 1)
    writer.append("s1 ")
    await platform.wait_until(lambda: platform.last.edits == 2)
    writer.append("s2 ")
    await pressed.wait()  # the third edit is refused: the flusher stops before anyone else runs
    for index in range(3, 40):
        writer.append(f"s{index} ")
    assert writer.stopped
    with pytest.raises(AnswerStopped):
        await writer.finish()
    await writer.fail("must not be shown")
    [message] = platform.messages
    assert not message.final and not message.failed
    assert writer.shown_text == message.text  # what the chat showed when it stopped
    assert writer.text.startswith(message.text) and len(writer.text) > len(message.text)


async def test_a_stop_reported_by_a_status_stops_the_answer() -> None:
    class StoppedWhileThinking(FakePlatform):
        async def start_reply(self, place, *, reply_to=""):  # type: ignore[no-untyped-def]
            reply = await super().start_reply(place, reply_to=reply_to)

            async def status(text: str) -> None:
                raise AnswerStopped("stopped")  # e.g. the console's Ctrl-C while the model thinks

            reply.status = status  # type: ignore[method-assign]
            return reply

    platform = StoppedWhileThinking()
    writer = await opened(platform, 0.01)
    await writer.status("💭 Thinking… 5 s")
    assert writer.stopped
    writer.append("never shown")
    with pytest.raises(AnswerStopped):
        await writer.finish()
    assert platform.last.text == "" and not platform.last.final


async def test_the_final_text_lands_at_once_not_after_the_edit_interval() -> None:
    platform = FakePlatform()
    writer = await opened(platform, 10.0)
    writer.append("first words ")
    await platform.wait_until(lambda: platform.last.edits == 1)  # the next edit may not come for 10 s
    writer.append("and the last ones")
    ended = time.perf_counter()
    await writer.finish()
    final = platform.events[-1]
    assert final.kind == "finish" and final.text == "first words and the last ones"
    assert final.at - ended < 5.0  # not the 10 s edit interval


async def test_a_long_stall_moves_the_answer_to_a_new_message_instead_of_hanging() -> None:
    platform = FakePlatform(retry_after=30.0)  # e.g. discord.py's max_ratelimit_timeout tripping
    writer = await opened(platform, 0.02)
    writer.append("shown before the stall. ")
    await platform.wait_until(lambda: platform.last.edits == 1)
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
    await platform.wait_until(lambda: platform.messages[0].final)  # finished in the background
    assert platform.messages[0].text == "shown before the stall. "


async def test_a_final_edit_refused_twice_goes_on_in_a_new_message() -> None:
    class Refusing(FakePlatform):
        refusals = 0  # the next edits of the first message refused (gone, or too old to edit)

        def check_budget(self, message):  # type: ignore[no-untyped-def]
            if self.refusals and message is self.messages[0]:
                self.refusals -= 1
                raise PlatformError("cannot edit this message")
            super().check_budget(message)

    platform = Refusing()
    writer = await opened(platform, 0.01)
    writer.append("first part ")
    await platform.wait_until(lambda: platform.last.edits == 1)
    platform.refusals = 2
    writer.append("and the rest")
    await writer.finish()  # at once: the flusher makes no interim edit in between
    assert [m.text for m in platform.messages] == ["first part ", "and the rest"]
    assert platform.messages[1].reply_to == platform.messages[0].id and platform.messages[1].final
    await platform.wait_until(lambda: platform.messages[0].final)  # left as shown, then closed


async def test_before_edit_brings_in_what_the_source_holds_before_each_interim_edit() -> None:
    platform = FakePlatform()
    held: list[str] = []  # what a gathering connection holds until asked

    def flush() -> None:
        for piece in held:
            writer.append(piece)
        held.clear()

    writer = await opened(platform, 0.01, before_edit=flush)
    held.append("held back ")  # never appended but by the hook: the writer looks for it itself
    await platform.wait_until(lambda: platform.last.text == "held back ")
    held.append("and more")
    await platform.wait_until(lambda: platform.last.text == "held back and more")
    assert [e.kind for e in platform.edits_of(platform.last.id)] == ["update", "update"]
    await writer.finish()
    assert platform.last.final and platform.last.text == "held back and more"


async def test_a_429_before_any_text_is_waited_out_and_the_answer_stays_whole() -> None:
    """Issue 15, part 2: a rate limit on a message that shows none of the answer yet never leaves
    a notice and a fragment elsewhere: the answer waits out Retry-After and lands in that message."""
    manual = ManualTime()
    platform = FakePlatform(retry_after=30.0, fail_edits=1)  # the very first call is refused
    writer = StreamWriter(
        platform, PLACE, budgets=EditBudgets(clock=manual.clock, sleep=manual.sleep), interval=10.0
    )
    await writer.open()
    writer.append("the whole answer")
    finishing = asyncio.create_task(writer.finish())
    await manual.asleep.wait()
    assert manual.sleeps == [30.0]  # waiting out Retry-After, not moving on
    assert not finishing.done() and [m.text for m in platform.messages] == [""]
    manual.advance(30.0)
    await finishing
    assert [m.text for m in platform.messages] == ["the whole answer"]
    assert platform.messages[0].final and not platform.messages[0].failed


def test_option_only_commands_followed_by_words_are_questions() -> None:
    from bot.parsing import parse_command_text

    assert parse_command_text("help me write a poem").name == "ask"
    assert parse_command_text("help me write a poem").text == "help me write a poem"
    assert parse_command_text("usage of semicolons?").name == "ask"
    assert parse_command_text("reset my router?").name == "ask"
    usage = parse_command_text("usage period:month")
    assert (usage.name, dict(usage.options)) == ("usage", {"period": "month"})
    assert parse_command_text("imagine count:2 a red fox").text == "a red fox"
    assert parse_command_text("").name == "help"
