"""The engine end to end: the real Grok client over a loopback xAI fake, a recording platform, and
a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import io
import itertools
import logging
from dataclasses import replace
from typing import Any

import pytest
from PIL import Image as PILImage
from sqlalchemy import func, select
from sqlmodel import col

from bot import store
from bot.command_registry import REGISTRY, CommandSpec, OptionSpec
from bot.commands import HANDLERS
from bot.errors import PlatformError
from bot.grok import GrokClient
from bot.grok.net import AsyncioTransport
from bot.help_text import help_text
from bot.parsing import parse_command_text
from bot.platform import Attachment, Author, Command, Feedback, Place
from bot.quotas import Subject
from bot.settings import usd_to_ticks
from bot.store.conversations import find_conversation, recent_turns
from bot.store.events import feedback_counts
from bot.store.places import set_system_prompt
from bot.tables import QuotaCounter, Turn, UsageEvent
from tests.bot.engine_env import ALICE, BOB, PLACE, EngineEnv, Watching, build, with_deferrals
from tests.fakes.platform import DEFAULT_CAPABILITIES, FakePlatform
from tests.fakes.xai import FakeXAI, Fault, ScriptedReply


@pytest.fixture
def env(fake_xai: FakeXAI, grok: GrokClient, sessions: Any) -> EngineEnv:
    return build(fake_xai, grok, sessions)


def png_bytes() -> bytes:
    out = io.BytesIO()
    PILImage.new("RGB", (4, 4), (200, 10, 10)).save(out, format="PNG")
    return out.getvalue()


async def counters(env: EngineEnv) -> dict[str, int]:
    async with env.engine.sessions() as session:
        rows = (await session.exec(select(col(QuotaCounter.subject), col(QuotaCounter.used)))).all()
    return {subject: used for subject, used in rows}


async def ledger(env: EngineEnv) -> list[UsageEvent]:
    async with env.engine.sessions() as session:
        return list((await session.exec(select(UsageEvent))).scalars().all())


# -- answers and history ----------------------------------------------------------------------------


async def test_streamed_text_equals_the_model_text(env: EngineEnv) -> None:
    answer = "Rayleigh scattering: shorter (blue) wavelengths scatter more. " * 8
    env.fake.queue_reply(ScriptedReply(text=answer, chunk_chars=3, tokens_per_second=2000))
    await env.say("why is the sky blue?")
    assert env.platform.visible_text() == answer
    assert env.platform.last.final
    assert env.platform.last.reply_to == "u1"  # answered as a reply to the question
    request = env.fake.chat_requests()[-1].json
    assert request["stream"] is True
    assert request["messages"][0]["role"] == "system"
    assert request["messages"][-1] == {"role": "user", "content": "[alice] why is the sky blue?"}
    assert request["user"] != ALICE.id  # an opaque hash, never the platform id


async def test_the_last_words_do_not_wait_for_the_end_of_the_response(
    fake_xai: FakeXAI, grok: GrokClient, sessions: Any
) -> None:
    # A server that ends the response only once the answer is final in the chat: the final edit
    # goes out at [DONE], and only then is the rest of the response read (so that its connection
    # is reused, not cut after waiting for an end that comes late).
    platform = Watching()
    env = build(fake_xai, grok, sessions, platform=platform)
    final = platform.when(lambda event: event.kind == "finish")
    env.fake.queue_reply(ScriptedReply(text="All of it, at once.", end_hold=final))
    await env.say("hello")
    [finish] = [e for e in env.platform.events if e.kind == "finish"]
    [ended] = env.fake.stream_ends
    assert finish.text == "All of it, at once."
    assert finish.at < ended
    assert env.fake.streams_cut == 0


async def test_history_carries_across_turns_and_names_each_speaker(env: EngineEnv) -> None:
    env.fake.queue_reply(ScriptedReply(text="Paris."))
    await env.say("capital of France?")
    env.fake.queue_reply(ScriptedReply(text="About 2.1 million."))
    await env.say("and its population?", author=BOB)
    messages = env.fake.chat_requests()[-1].json["messages"]
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert messages[1]["content"] == "[alice] capital of France?"
    assert messages[2]["content"] == "Paris."
    assert messages[3]["content"] == "[bob] and its population?"
    # Both answers kept with model, fingerprint, tokens and cost.
    conversation = await find_conversation(env.engine.sessions, PLACE)
    assert conversation is not None
    turns = await recent_turns(env.engine.sessions, conversation.id)
    assistant = [t for t in turns if t.role == "assistant"]
    assert len(assistant) == 2
    assert all(t.model and t.fingerprint and t.completion_tokens > 0 and t.cost_ticks > 0 for t in assistant)


async def test_the_same_conversation_header_is_sent_every_turn(env: EngineEnv) -> None:
    await env.say("one")
    await env.say("two")
    ids = {r.headers.get("x-grok-conv-id") for r in env.fake.chat_requests()}
    assert len(ids) == 1 and None not in ids


async def test_reset_forgets_the_history(env: EngineEnv) -> None:
    await env.say("remember the number 42")
    await env.command("reset")
    assert "Forgot" in env.platform.last.text
    await env.say("what number?")
    messages = env.fake.chat_requests()[-1].json["messages"]
    assert [m["role"] for m in messages] == ["system", "user"]


async def test_unaddressed_messages_outside_a_conversation_are_ignored(env: EngineEnv) -> None:
    await env.say("just chatting", addressed=False, place=Place("fake", "W1", "C1", "other"))
    assert env.fake.chat_requests() == []
    assert env.platform.messages == []


async def test_unaddressed_messages_inside_a_conversation_are_answered(env: EngineEnv) -> None:
    await env.say("start")
    await env.say("follow-up without a mention", addressed=False)
    assert len(env.fake.chat_requests()) == 2


async def test_a_reply_to_a_bot_message_continues_its_conversation(env: EngineEnv) -> None:
    env.fake.queue_reply(ScriptedReply(text="The answer is 7."))
    await env.say("what is 3 + 4?")
    bot_message = env.platform.last.id
    elsewhere = Place("fake", "W1", "C1", "a-new-message-id")
    await env.say("and times 2?", place=elsewhere, reply_to=bot_message, addressed=False)
    messages = env.fake.chat_requests()[-1].json["messages"]
    assert [m["content"] for m in messages[1:]] == [
        "[alice] what is 3 + 4?",
        "The answer is 7.",
        "[alice] and times 2?",
    ]


async def test_slash_questions_continue_the_callers_own_conversation(env: EngineEnv) -> None:
    channel = Place("fake", "W1", "C9", "")
    await env.say(command=Command("ask", text="first"), place=channel)
    await env.say(command=Command("ask", text="second"), place=channel)
    await env.say(command=Command("ask", text="bob's own"), place=channel, author=BOB)
    requests = env.fake.chat_requests()
    assert len(requests[1].json["messages"]) == 4  # system, first, answer, second
    assert len(requests[2].json["messages"]) == 2  # bob starts fresh


async def test_history_is_trimmed_to_the_context_window(
    env: EngineEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    for number in range(6):
        env.fake.queue_reply(ScriptedReply(text=f"answer {number} " + "x" * 8000))
        await env.say(f"question {number}")
    # A window that holds the answer budget, the new turn and about two old turns.
    from bot.engine import ANSWER_TOKENS, reasoning_allowance

    budget = ANSWER_TOKENS + reasoning_allowance("grok-4.3", None)
    monkeypatch.setattr(env.engine.grok.prices, "context_window", lambda model: budget + 4000 + 2600)
    await env.say("latest")
    messages = env.fake.chat_requests()[-1].json["messages"]
    contents = [m["content"] for m in messages]
    assert contents[-1] == "[alice] latest"
    assert messages[1]["role"] == "user"  # never opens with an orphaned answer
    assert 3 <= len(messages) < 12
    assert "question 0" not in " ".join(contents)


async def test_two_messages_in_one_place_never_interleave(
    fake_xai: FakeXAI, grok: GrokClient, sessions: Any
) -> None:
    second_arrived = asyncio.Event()

    class FirstWaitsForSecond(FakePlatform):
        """The first answer opens only once the second question reached the engine (it reads the
        second's image, which happens before the second takes its turn in the conversation)."""

        async def start_reply(self, place: Place, *, reply_to: str = "") -> Any:
            if reply_to == first.message_id:
                await second_arrived.wait()
            return await super().start_reply(place, reply_to=reply_to)

        async def download(self, attachment: Attachment) -> bytes:
            second_arrived.set()
            return await super().download(attachment)

    env = build(fake_xai, grok, sessions, platform=FirstWaitsForSecond())
    env.fake.queue_reply(ScriptedReply(text="slow answer"))
    env.fake.queue_reply(ScriptedReply(text="fast answer"))
    image = Attachment("x.png", "image/png", len(png_bytes()), data=png_bytes())
    first, second = env.said("first"), env.said("second", author=BOB, attachments=(image,))
    await asyncio.gather(env.engine.handle(first, env.platform), env.engine.handle(second, env.platform))
    conversation = await find_conversation(env.engine.sessions, PLACE)
    assert conversation is not None
    turns = await recent_turns(env.engine.sessions, conversation.id)
    assert [t.role for t in turns] == ["user", "assistant", "user", "assistant"]
    assert turns[1].text == "slow answer"
    # The second question saw the first exchange in its history.
    assert len(env.fake.chat_requests()[-1].json["messages"]) == 4


# -- reasoning --------------------------------------------------------------------------------------


async def test_reasoning_shows_thinking_then_the_answer_and_charges_reasoning(env: EngineEnv) -> None:
    env.fake.queue_reply(
        ScriptedReply(text="42.", reasoning="Let me think about this carefully. " * 20, tokens_per_second=400)
    )
    await env.say(command=Command("ask", options={"reasoning": "high"}, text="meaning of life?"))
    request = env.fake.chat_requests()[-1].json
    assert request["model"] == "grok-3-mini"
    assert request["reasoning_effort"] == "high"
    statuses = [e.text for e in env.platform.events if e.kind == "status"]
    assert statuses and statuses[0].startswith("💭 Thinking")
    final = env.platform.last.text
    assert final.startswith("_Thought for ") and final.endswith("42.")
    events = await ledger(env)
    assert events[-1].reasoning_tokens > 0


async def test_reasoning_accepts_only_low_or_high(env: EngineEnv) -> None:
    await env.say(command=Command("ask", options={"reasoning": "max"}, text="hi"))
    assert "low" in env.platform.last.text and "high" in env.platform.last.text
    assert env.fake.chat_requests() == []


# -- images -----------------------------------------------------------------------------------------


async def test_imagine_posts_files_with_the_revised_prompt_and_charges_per_image(env: EngineEnv) -> None:
    await env.command("imagine", "a red fox", count="2")
    message = env.platform.last
    assert message.final and len(message.images) == 2
    assert all(image.data.startswith(b"\x89PNG") for image in message.images)
    assert "a red fox" in message.text
    events = await ledger(env)
    assert events[-1].kind == "image" and events[-1].images == 2
    assert events[-1].cost_ticks == 2 * 200_000_000
    used = await counters(env)
    assert used["images:fake:W1:U1"] == 2


async def test_imagine_rejects_a_bad_count_without_calling_grok(env: EngineEnv) -> None:
    await env.command("imagine", "a fox", count="9")
    assert "1 to 4" in env.platform.last.text
    assert [r for r in env.fake.requests if "images" in r.path] == []


async def test_moderated_image_is_explained_and_refunded(env: EngineEnv) -> None:
    env.fake.moderate_images = True
    await env.command("imagine", "something blocked")
    assert "moderation" in env.platform.last.failed
    assert all(value == 0 for value in (await counters(env)).values())
    assert await ledger(env) == []


async def test_image_attachments_go_to_grok_as_image_parts(env: EngineEnv) -> None:
    data = png_bytes()
    env.platform.files["https://cdn/x.png"] = data
    attachment = Attachment("x.png", "image/png", len(data), url="https://cdn/x.png")
    await env.say("what colour is this?", attachments=(attachment,))
    content = env.fake.chat_requests()[-1].json["messages"][-1]["content"]
    assert content[0] == {"type": "text", "text": "[alice] what colour is this?"}
    assert content[1]["type"] == "image_url"
    assert content[1]["image_url"]["url"].startswith("data:image/png;base64,")


async def test_other_files_get_a_clear_message_and_nothing_is_called(env: EngineEnv) -> None:
    env.platform.files["https://cdn/notes.pdf"] = b"%PDF-1.7 not an image"
    attachment = Attachment("notes.pdf", "application/pdf", 21, url="https://cdn/notes.pdf")
    await env.say("summarise this", attachments=(attachment,))
    text = env.platform.last.text
    assert "notes.pdf" in text and "JPEG" in text and "PNG" in text
    assert env.fake.chat_requests() == []


async def test_oversized_images_are_refused_before_download(env: EngineEnv) -> None:
    attachment = Attachment("huge.png", "image/png", 11 * 1024 * 1024, url="https://cdn/never")
    await env.say("look", attachments=(attachment,))
    assert "10 MiB" in env.platform.last.text


# -- quotas -----------------------------------------------------------------------------------------


async def test_a_refused_request_names_the_limit_and_calls_nothing(
    fake_xai: FakeXAI, grok: GrokClient, sessions: Any
) -> None:
    env = build(fake_xai, grok, sessions, grokbot_user_daily_usd="0.0000001")
    await env.say("expensive question")
    text = env.platform.last.text
    assert "daily spend" in text and "resets" in text and "left" in text
    assert env.platform.last.private_to == ALICE.id
    assert env.fake.chat_requests() == []


async def test_upstream_failure_is_refunded_in_full(env: EngineEnv) -> None:
    env.fake.fail_next(400, body={"code": "Client specified an invalid argument", "error": "bad thing"})
    await env.say("this will fail")
    assert "rejected" in env.platform.last.text or "rejected" in env.platform.last.failed
    assert all(value == 0 for value in (await counters(env)).values())
    assert await ledger(env) == []


async def test_an_answer_cut_halfway_keeps_what_was_shown_and_says_so(env: EngineEnv) -> None:
    text = "".join(f"part{i} " for i in range(40))
    env.fake.queue_reply(ScriptedReply(text=text, chunk_chars=5, fault=Fault("cut", after_chunks=20)))
    await env.say("tell me a story")
    message = env.platform.last
    assert message.text and text.startswith(message.text)
    assert "cut off" in message.failed
    assert all(value == 0 for value in (await counters(env)).values())


async def test_quota_is_exact_under_100_concurrent_requests(
    fake_xai: FakeXAI, grok: GrokClient, sessions: Any
) -> None:
    env = build(fake_xai, grok, sessions, grokbot_user_daily_usd="0.20", grokbot_user_monthly_usd="0")
    limit = usd_to_ticks(__import__("decimal").Decimal("0.20"))
    fake_xai.default_reply = ScriptedReply(text="ok", cost_ticks=1)
    places = [Place("fake", "W1", "C1", f"t{n}") for n in range(100)]
    await asyncio.gather(*(env.say(f"q{n}", place=place) for n, place in enumerate(places)))
    answered = len(fake_xai.chat_requests())
    refused = sum(1 for m in env.platform.messages if "daily spend" in m.text)
    assert answered + refused == 100
    assert 0 < answered < 100
    async with env.engine.sessions() as session:
        rows = (await session.exec(select(QuotaCounter))).scalars().all()
    daily = next(r for r in rows if r.subject == "user:fake:W1:U1" and len(r.period_key) == 10)
    assert daily.used == answered  # settled to the real cost: one tick each
    events = await ledger(env)
    assert len(events) == answered
    assert sum(e.cost_ticks for e in events) <= limit


async def test_usage_shows_spend_and_what_is_left(env: EngineEnv) -> None:
    env.fake.queue_reply(ScriptedReply(text="hi", cost_ticks=123_000_000))
    await env.say("hello")
    await env.command("usage")
    text = env.platform.last.text
    assert "$0.0123" in text and "of $1.00" in text and "left" in text
    assert env.platform.last.private_to == ALICE.id


async def test_quota_command_is_for_admins_only(env: EngineEnv) -> None:
    await env.command("quota", user="<@U2>", daily_usd="5")
    assert "Only admins" in env.platform.last.text
    await env.say(
        command=Command("quota", options={"user": "<@U2>", "daily_usd": "5"}),
        author=Author("A", "admin", is_admin=True),
    )
    assert "$5.00 a day" in env.platform.last.text
    limits = await env.quotas.limits_for(Subject("fake", "W1", "U2"))
    assert limits.daily_ticks == usd_to_ticks(__import__("decimal").Decimal(5))


async def test_quota_rejects_bad_amounts(env: EngineEnv) -> None:
    admin = Author("A", "admin", is_admin=True)
    await env.say(command=Command("quota", options={"user": "U2", "daily_usd": "lots"}), author=admin)
    assert "US dollars" in env.platform.last.text


# -- commands and errors ----------------------------------------------------------------------------


async def test_help_lists_every_command(env: EngineEnv) -> None:
    await env.command("help")
    for name in ("ask", "imagine", "usage", "quota", "digest", "reset", "help"):
        assert f"`{name}" in env.platform.last.text


async def test_help_shows_every_registered_command_and_each_of_its_options(env: EngineEnv) -> None:
    await env.command("help")
    shown = env.platform.last.text
    assert env.platform.last.private_to == ALICE.id
    for spec in REGISTRY:
        assert f"`{spec.name}" in shown, spec.name
        for option in spec.all_options:
            assert option.written in shown, f"{spec.name} {option.name}"


def test_a_command_added_to_the_registry_appears_in_the_help() -> None:
    weather = OptionSpec("city", "<name>", "where")
    added = CommandSpec("weather", "says what the sky does", text="<when>", options=(weather,))
    shown = help_text((*REGISTRY, added))
    assert "`weather <when>` — says what the sky does." in shown
    assert "`city:<name>` (where)" in shown
    assert "weather" not in help_text()


def test_every_registered_command_has_a_handler_and_every_handler_a_registration() -> None:
    assert set(HANDLERS) | {"ask"} == {spec.name for spec in REGISTRY}
    for spec in REGISTRY:  # typed as text, each is recognised, with its options
        options = " ".join(f"{o.name}:x" for o in spec.all_options)
        parsed = parse_command_text(f"{spec.name} {options}")
        assert (parsed.name, set(parsed.options)) == (spec.name, {o.name for o in spec.all_options})


async def test_options_are_checked_against_the_registry(env: EngineEnv) -> None:
    for spec in REGISTRY:
        if spec.name in ("ask", "digest", "help", "reset"):
            continue  # ask says what it accepts (below); digest's book reads its own; no options
        await env.command(spec.name, "a fox", colour="red")
        assert "Unknown option `colour`" in env.platform.last.text
        assert f"`{spec.usage}`" in env.platform.last.text, spec.name


async def test_unknown_option_says_what_is_accepted(env: EngineEnv) -> None:
    await env.say(command=Command("ask", options={"temperature": "2"}, text="hi"))
    assert "reasoning:low|high" in env.platform.last.text


async def test_unexpected_errors_get_an_apology_with_an_error_id(
    env: EngineEnv, caplog: pytest.LogCaptureFixture
) -> None:
    class Broken(FakePlatform):
        async def start_reply(self, place: Place, *, reply_to: str = "") -> Any:
            raise RuntimeError("boom")

    env.platform = Broken()
    with caplog.at_level(logging.ERROR):
        await env.say("hello")
    text = env.platform.last.text
    assert "error id" in text
    error_id = text.split("`")[1]
    assert any(error_id in record.getMessage() and record.exc_info for record in caplog.records)
    assert all(value == 0 for value in (await counters(env)).values())  # refunded


async def test_the_api_key_never_reaches_a_message_or_a_log(
    fake_xai: FakeXAI, sessions: Any, caplog: pytest.LogCaptureFixture
) -> None:
    import httpx

    secret = "xai-THIS-IS-SECRET-123"
    async with httpx.AsyncClient(transport=AsyncioTransport()) as http:
        wrong = GrokClient(http, api_key=secret, base_url=fake_xai.base_url)
        env = build(fake_xai, wrong, sessions)
        with caplog.at_level(logging.DEBUG):
            await env.say("hello")
    shown = env.platform.last.text + env.platform.last.failed
    assert "API key" in shown
    assert secret not in shown
    assert all(secret not in record.getMessage() for record in caplog.records)


async def test_a_long_answer_is_split_without_losing_text(
    fake_xai: FakeXAI, grok: GrokClient, sessions: Any
) -> None:
    platform = FakePlatform(capabilities=replace(DEFAULT_CAPABILITIES, max_message_length=500))
    env = build(fake_xai, grok, sessions, platform=platform)
    answer = " ".join(f"word{i}" for i in range(600))
    env.fake.queue_reply(ScriptedReply(text=answer, chunk_chars=20))
    await env.say("long please")
    assert len(platform.messages) > 5
    assert all(len(m.text) <= 500 for m in platform.messages)
    assert platform.visible_text() == answer
    # Every part is linked to the conversation: replying to the last continues it.
    await env.say("more", reply_to=platform.last.id, place=Place("fake", "W1", "C1", "x"), addressed=False)
    assert len(env.fake.chat_requests()) == 2


async def test_redelivered_events_are_claimed_once(env: EngineEnv) -> None:
    for _ in range(3):
        env.fake.queue_reply(ScriptedReply(text="once"))
    slack = replace(env.said("hello"), event_id="Ev1", deduplicate=True)
    assert await env.engine.handle(slack, env.platform) is True
    assert await env.engine.handle(slack, env.platform) is False
    other = replace(slack, place=replace(slack.place, platform="discord"))
    assert await env.engine.handle(other, env.platform) is True
    assert len(env.fake.chat_requests()) == 2  # the repeat was not answered


async def test_a_command_typed_wrong_is_told_by_the_engine(env: EngineEnv) -> None:
    await env.say(command=parse_command_text("imagine count:1 count:2 a fox"))
    told = [m for m in env.platform.messages if m.private_to == ALICE.id]
    assert "given twice" in told[-1].text
    assert not [r for r in env.fake.requests if r.path.endswith("/images/generations")]


async def test_feedback_goes_through_the_engine_and_bad_values_are_told(env: EngineEnv) -> None:
    place = Place("fake", "W1", "C1", "t1")
    await env.engine.feedback(Feedback(place, "m1", "U1", "good"), env.platform)
    await env.engine.feedback(Feedback(place, "m1", "U2", "meh"), env.platform)
    assert await feedback_counts(env.engine.sessions, platform="fake") == {"good": 1}
    told = [m for m in env.platform.messages if m.private_to == "U2"]
    assert "👍 or 👎" in told[-1].text


async def test_each_answer_stores_model_fingerprint_tokens_and_cost(env: EngineEnv) -> None:
    env.fake.queue_reply(ScriptedReply(text="stored", cost_ticks=777))
    await env.say("store me")
    async with env.engine.sessions() as session:
        turn = (await session.exec(select(Turn).where(col(Turn.role) == "assistant"))).scalar_one()
        count = (await session.exec(select(func.count()).select_from(UsageEvent))).scalar_one()
    assert turn.text == "stored" and turn.cost_ticks == 777
    assert turn.fingerprint.startswith("fp_") and turn.xai_request_id
    assert count == 1


# -- deferred answers through the engine ------------------------------------------------------------


async def test_ask_defer_delivers_the_answer_later_and_charges_the_real_cost(
    fake_xai: FakeXAI, grok: GrokClient, sessions: Any
) -> None:
    from datetime import timedelta

    env = build(fake_xai, grok, sessions)
    deferrals = with_deferrals(env, grok, sessions)
    fake_xai.queue_reply(
        ScriptedReply(text="A considered answer.", deferred_pending_polls=2, cost_ticks=5000)
    )
    await env.say(command=Command("ask", options={"defer": "true"}, text="think about it"))
    assert "deferred request" in env.platform.last.text
    assert fake_xai.chat_requests()[-1].json["deferred"] is True
    held = await counters(env)
    assert held["user:fake:W1:U1"] > 5000  # the estimate is held meanwhile
    for _ in range(6):
        env.clock.now += timedelta(seconds=40)
        await deferrals.poll_due()
    assert env.platform.last.text == "A considered answer."
    used = await counters(env)
    assert used["user:fake:W1:U1"] == 5000  # settled to the real cost
    events = await ledger(env)
    assert [e.cost_ticks for e in events] == [5000]


async def test_ask_defer_without_a_job_runner_is_refused_and_refunded(env: EngineEnv) -> None:
    await env.say(command=Command("ask", options={"defer": "yes"}, text="later please"))
    assert "not available" in env.platform.last.text
    assert all(value == 0 for value in (await counters(env)).values())


async def test_defer_accepts_only_booleans(env: EngineEnv) -> None:
    await env.say(command=Command("ask", options={"defer": "soon"}, text="hi"))
    assert "true or false" in env.platform.last.text


# -- review fixes: limits, holds and failure paths --------------------------------------------------


async def test_a_server_admin_still_has_spend_limits_only_operators_are_exempt(
    fake_xai: FakeXAI, grok: GrokClient, sessions: Any
) -> None:
    env = build(fake_xai, grok, sessions, grokbot_user_daily_usd="0.0000001", grokbot_admins="slack:OPS")
    place = Place("slack", "W1", "C1", "T1")
    server_admin = Author("SA", "server-admin", is_admin=True)  # e.g. a workspace admin
    await env.say("expensive", author=server_admin, place=place)
    assert "daily spend" in env.platform.last.text
    await env.say("expensive", author=Author("OPS", "operator"), place=place)
    assert env.platform.last.final and env.platform.last.text.startswith("Echo:")


def test_reasoning_allowance_covers_models_that_reason_by_default() -> None:
    from bot.engine import reasoning_allowance

    assert reasoning_allowance("grok-4.3", None) > 0
    assert reasoning_allowance("grok-3-mini", None) > 0
    assert reasoning_allowance("grok-4-1-fast-non-reasoning", None) == 0
    assert reasoning_allowance("grok-3", None) == 0
    assert reasoning_allowance("grok-3", "high") > reasoning_allowance("grok-3", "low") > 0


async def test_imagine_releases_its_hold_when_the_reply_cannot_open(
    fake_xai: FakeXAI, grok: GrokClient, sessions: Any
) -> None:
    from bot.errors import PlatformError

    class NoReplies(FakePlatform):
        async def start_reply(self, place: Place, *, reply_to: str = "") -> Any:
            raise PlatformError("missing permissions in this channel")

    env = build(fake_xai, grok, sessions, platform=NoReplies())
    await env.command("imagine", "a fox")
    assert all(value == 0 for value in (await counters(env)).values())
    assert await ledger(env) == []
    assert env.platform.last.private_to == ALICE.id  # told what happened, privately


async def test_an_answer_whose_message_cannot_open_is_explained_not_apologised_for(
    fake_xai: FakeXAI, grok: GrokClient, sessions: Any
) -> None:
    from bot.errors import PlatformError

    class NoReplies(FakePlatform):
        async def start_reply(self, place: Place, *, reply_to: str = "") -> Any:
            raise PlatformError(
                "Discord refused posting a message: 403 (code 50013) Missing Permissions",
                user_text="I cannot post here: an admin can let me send messages in this channel.",
            )

    env = build(fake_xai, grok, sessions, platform=NoReplies())
    await env.say("hello")
    assert "error id" not in env.platform.last.text
    assert "cannot post here" in env.platform.last.text
    assert "50013" not in env.platform.last.text  # what it means for the person, not the refusal
    assert all(value == 0 for value in (await counters(env)).values())


INTERNAL_TEXTS = (
    "the Slack adapter is not started",
    "this answer is already finished",
    "Discord refused posting a message: 403 (code 50013) Missing Permissions",
)


class Refusing(FakePlatform):
    """Refuses `where` ("open": opening an answer, "finish": an answer's final edit, "upload": a
    plain upload of images) with a PlatformError whose message names internals."""

    def __init__(self, where: str, message: str, *, user_text: str = "") -> None:
        super().__init__()
        self.where, self.refusal = where, PlatformError(message, user_text=user_text)

    async def start_reply(self, place: Place, *, reply_to: str = "") -> Any:
        if self.where == "open":
            raise self.refusal
        reply = await super().start_reply(place, reply_to=reply_to)
        if self.where == "finish":
            reply.finish = self._refuse  # type: ignore[method-assign]
        return reply

    async def post_images(self, place: Place, images: Any, *, text: str = "") -> str:
        if self.where in ("finish", "upload"):
            raise self.refusal
        return await super().post_images(place, images, text=text)

    async def _refuse(self, *args: Any, **kwargs: Any) -> None:
        raise self.refusal

    def shown(self) -> str:
        return "\n".join(m.text + m.failed for m in self.messages)


@pytest.mark.parametrize("internal", INTERNAL_TEXTS)
@pytest.mark.parametrize(("where", "ask"), [("open", "say"), ("finish", "say"), ("finish", "imagine")])
async def test_a_platform_refusal_is_told_in_plain_words_and_its_internal_text_only_logged(
    fake_xai: FakeXAI,
    grok: GrokClient,
    sessions: Any,
    caplog: pytest.LogCaptureFixture,
    internal: str,
    where: str,
    ask: str,
) -> None:
    platform = Refusing(where, internal)
    env = build(fake_xai, grok, sessions, platform=platform)
    with caplog.at_level(logging.INFO):
        await (env.say("hello") if ask == "say" else env.command("imagine", "a fox"))
    assert internal not in platform.shown()
    assert "chat platform did not take my message" in platform.shown()
    assert "error id" not in platform.shown()  # expected, so explained rather than apologised for
    assert any(internal in record.getMessage() for record in caplog.records)
    assert all(value == 0 for value in (await counters(env)).values())  # nothing reached the chat


async def test_a_refusal_that_means_something_to_the_person_ends_the_answer_with_that(
    fake_xai: FakeXAI, grok: GrokClient, sessions: Any
) -> None:
    meaning = "I cannot upload files in this channel; ask an admin to allow it."
    platform = Refusing("finish", "files.uploadV2 failed: not_in_channel", user_text=meaning)
    env = build(fake_xai, grok, sessions, platform=platform)
    await env.command("imagine", "a fox")
    [answer] = platform.messages
    assert answer.failed == meaning  # told in the answer it broke, not in a note beside it
    assert "not_in_channel" not in platform.shown()


async def test_grok_rejections_do_not_show_xais_raw_text(env: EngineEnv) -> None:
    env.fake.fail_next(404, body={"code": "not found", "error": "The model x does not exist or team T-123"})
    await env.say("hi")
    shown = env.platform.last.text + env.platform.last.failed
    assert "rejected" in shown and "T-123" not in shown


async def test_a_delivered_answer_that_cannot_be_recorded_gets_no_apology(
    env: EngineEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy.exc import OperationalError

    async def broken(*args: Any, **kwargs: Any) -> None:
        raise OperationalError("INSERT", {}, Exception("disk I/O error"))

    monkeypatch.setattr(store, "add_turns", broken)
    env.fake.queue_reply(ScriptedReply(text="complete answer"))
    await env.say("hello")
    assert env.platform.last.text == "complete answer" and env.platform.last.final
    assert not any("error id" in m.text for m in env.platform.messages)


async def test_a_mention_that_says_reset_forgets_that_thread(env: EngineEnv) -> None:
    thread = Place("fake", "W1", "C1", "thread-1")
    await env.say("remember 42", place=thread)
    await env.say("reset", place=thread, addressed=False)  # a plain word inside the conversation
    assert "Forgot this conversation" in env.platform.last.text
    await env.say("what number?", place=thread)
    assert [m["role"] for m in env.fake.chat_requests()[-1].json["messages"]] == ["system", "user"]


async def test_a_word_command_outside_a_conversation_is_ignored_unless_addressed(env: EngineEnv) -> None:
    elsewhere = Place("fake", "W1", "C1", "not-a-conversation")
    await env.say("help", place=elsewhere, addressed=False)
    assert env.platform.messages == []
    await env.say("help!", place=elsewhere)  # a mention
    assert "Grok commands" in env.platform.last.text
    assert env.fake.chat_requests() == []


async def test_gathered_reads_are_flushed_before_each_edit(
    fake_xai: FakeXAI, grok: GrokClient, sessions: Any
) -> None:
    """With reads gathered for ten minutes, each interim edit (every 0.2 s here) still shows what
    had arrived: the writer flushes the connection's gathered bytes just before editing. The fake
    sends the answer in four parts, each only once an edit shows the part before it."""
    platform = Watching()
    env = build(fake_xai, grok, sessions, platform=platform)
    env.engine.grok.read_gather_s = 600.0
    answer = "".join(f"word{i} " for i in range(120))
    holds = tuple(
        (chunk, platform.when(lambda e, shown=chunk * 6: e.kind == "update" and len(e.text) >= shown))
        for chunk in (40, 80, 120)
    )
    env.fake.queue_reply(ScriptedReply(text=answer, chunk_chars=6, holds=holds))
    await env.say("count for me")
    assert env.platform.visible_text() == answer
    interim = [e.text for e in env.platform.events if e.kind == "update" and e.text.strip()]
    assert len(set(interim)) >= 3  # growing text while it streamed, not the first words and then all
    assert all(len(a) < len(b) for a, b in itertools.pairwise(interim))


def system_prompts(env: EngineEnv) -> list[str]:
    """The system message of every chat request so far."""
    out = []
    for request in env.fake.chat_requests():
        first = request.json["messages"][0]
        assert first["role"] == "system"
        content = first["content"]
        out.append(content if isinstance(content, str) else "".join(p.get("text", "") for p in content))
    return out


async def test_a_channel_prompt_wins_over_the_workspace_prompt(env: EngineEnv) -> None:
    sessions, now = env.engine.sessions, env.clock()
    await set_system_prompt(sessions, PLACE, "Answer like a pirate.", whole_workspace=True, by="U0", now=now)
    haiku = Place(PLACE.platform, PLACE.workspace, "C2", "T9")
    await set_system_prompt(sessions, haiku, "Answer in haiku.", whole_workspace=False, by="U0", now=now)
    elsewhere = Place(PLACE.platform, "W2", "C1", "T1")
    await env.say("hello")  # C1 has no prompt of its own: the workspace's
    await env.say("hello", place=haiku)
    await env.say("hello", place=elsewhere)  # another workspace: the default
    pirate, poem, default = system_prompts(env)
    assert pirate == "Answer like a pirate."
    assert poem == "Answer in haiku."
    assert default not in {pirate, poem} and default  # the built-in prompt


async def test_a_channel_prompt_is_read_once_per_channel_and_again_after_a_minute(
    fake_xai: FakeXAI, grok: GrokClient, sessions: Any
) -> None:
    now = [1_000.0]
    env = build(fake_xai, grok, sessions, monotonic=lambda: now[0])
    await set_system_prompt(sessions, PLACE, "First.", whole_workspace=False, by="U0", now=env.clock())
    await env.say("a")
    await set_system_prompt(sessions, PLACE, "Second.", whole_workspace=False, by="U0", now=env.clock())
    await env.say("b", place=Place(PLACE.platform, PLACE.workspace, PLACE.channel, "T2"))  # a new thread
    now[0] += 61
    await env.say("c", place=Place(PLACE.platform, PLACE.workspace, PLACE.channel, "T3"))
    assert system_prompts(env) == ["First.", "First.", "Second."]
