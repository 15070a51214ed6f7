"""Arrival order per place: a message with a slow download is not overtaken by the one said after it,
and a command said before a question runs before it."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from bot.admission import Admission
from bot.grok import GrokClient
from bot.platform import Attachment, Command
from bot.store.conversations import find_conversation, recent_turns
from tests.bot.engine_env import BOB, PLACE, build
from tests.fakes.platform import FakePlatform
from tests.fakes.xai import FakeXAI, ScriptedReply, tiny_png


async def test_tickets_go_in_arrival_order_per_place_and_places_do_not_wait_for_each_other() -> None:
    admission = Admission()
    first, second, third = (admission.take("a") for _ in range(3))
    elsewhere = admission.take("b")
    went: list[str] = []

    async def go(name: str, ticket: Any) -> None:
        await ticket.turn()
        went.append(name)
        ticket.admit()

    tasks = [asyncio.create_task(go(n, t)) for n, t in (("third", third), ("second", second))]
    await go("elsewhere", elsewhere)  # another place's line is empty before it: no wait
    await asyncio.sleep(0)
    assert went == ["elsewhere"]  # "a"'s later tickets wait for the first
    with first:  # leaving admits, whatever happened
        pass
    await asyncio.gather(*tasks)
    assert went == ["elsewhere", "second", "third"]
    assert len(admission) == 0  # empty lines are dropped


async def test_a_ticket_that_leaves_early_lets_its_successor_go() -> None:
    admission = Admission()
    first, second = admission.take("a"), admission.take("a")
    second.admit()  # e.g. a repeated delivery, dropped before it waited its turn
    await asyncio.wait_for(first.turn(), 1)
    first.admit()
    first.admit()  # idempotent
    assert len(admission) == 0


async def test_a_question_with_a_slow_download_is_not_overtaken_by_the_next(
    fake_xai: FakeXAI, grok: GrokClient, sessions: Any
) -> None:
    second_asked = asyncio.Event()

    class SlowDownload(FakePlatform):
        """The first question's image arrives only after the second question has reached the engine
        (or a generous while, when the engine holds the second back as it should)."""

        async def download(self, attachment: Attachment) -> bytes:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(second_asked.wait(), 0.5)
            return await super().download(attachment)

    env = build(fake_xai, grok, sessions, platform=SlowDownload())
    env.fake.queue_reply(ScriptedReply(text="A small square."))
    env.fake.queue_reply(ScriptedReply(text="Blue, as in the picture."))
    image = Attachment("x.png", "image/png", len(tiny_png(1)), data=tiny_png(1))
    first = env.said("what is this?", attachments=(image,))
    second = env.said("and what colour is it?", author=BOB)

    async def ask_second() -> None:
        await asyncio.sleep(0)  # said just after the first
        handled = asyncio.create_task(env.engine.handle(second, env.platform))
        await asyncio.sleep(0.05)
        second_asked.set()
        await handled

    await asyncio.gather(env.engine.handle(first, env.platform), ask_second())
    conversation = await find_conversation(env.engine.sessions, PLACE)
    assert conversation is not None
    turns = await recent_turns(env.engine.sessions, conversation.id)
    assert [(t.role, t.text) for t in turns] == [
        ("user", "what is this?"),
        ("assistant", "A small square."),
        ("user", "and what colour is it?"),
        ("assistant", "Blue, as in the picture."),
    ]
    # The second question was asked with the first exchange in its history.
    seen = [m["role"] for m in env.fake.chat_requests()[-1].json["messages"]]
    assert seen == ["system", "user", "assistant", "user"]


async def test_a_reset_said_before_a_question_runs_before_it(
    fake_xai: FakeXAI, grok: GrokClient, sessions: Any
) -> None:
    env = build(fake_xai, grok, sessions)
    env.fake.queue_reply(ScriptedReply(text="Hello."))
    await env.say("hi")
    slow_reset = asyncio.Event()
    original = env.engine.conversations.forget

    async def forget(place: Any) -> int:
        await asyncio.wait_for(slow_reset.wait(), 0.5)
        return await original(place)

    env.engine.conversations.forget = forget  # type: ignore[method-assign]
    env.fake.queue_reply(ScriptedReply(text="A fresh start."))
    reset = env.said(command=Command("reset"))
    question = env.said("who are you?")

    async def later() -> None:
        await asyncio.sleep(0.05)
        slow_reset.set()

    await asyncio.gather(
        env.engine.handle(reset, env.platform), env.engine.handle(question, env.platform), later()
    )
    # The question came after the reset: it was asked without the earlier exchange.
    seen = [m["role"] for m in env.fake.chat_requests()[-1].json["messages"]]
    assert seen == ["system", "user"]
