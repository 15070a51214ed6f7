"""One INFO line per answer (streamed, image, deferred) with its place, model, tokens, cost and
latency, the question's text never in it; the same fields as keys of the JSON log format."""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from bot.grok import GrokClient
from bot.logs import JsonFormatter, TextFormatter
from bot.platform import Command
from bot.tables import UsageEvent
from tests.bot.engine_env import ALICE, PLACE, EngineEnv, build, with_deferrals
from tests.fakes.xai import FakeXAI, ScriptedReply

QUESTION = "why is the sky so very blue today"


def answer_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "bot.answer_lines"]


async def ledger(env: EngineEnv) -> list[UsageEvent]:
    async with env.engine.sessions() as session:
        return list((await session.exec(select(UsageEvent))).scalars().all())


@pytest.fixture
def env(fake_xai: FakeXAI, grok: GrokClient, sessions: Any, caplog: pytest.LogCaptureFixture) -> EngineEnv:
    caplog.set_level(logging.INFO, logger="bot.answer_lines")
    return build(fake_xai, grok, sessions)


async def test_a_streamed_answer_logs_one_line_with_place_model_tokens_cost_and_latency(
    env: EngineEnv, caplog: pytest.LogCaptureFixture
) -> None:
    env.fake.queue_reply(
        ScriptedReply(text="Rayleigh scattering.", reasoning="short thought", cost_ticks=7777)
    )
    await env.say(QUESTION)
    [record] = answer_records(caplog)
    assert record.levelno == logging.INFO
    fields = vars(record)
    assert (fields["answer"], fields["place"], fields["user"]) == ("chat", PLACE.key, ALICE.id)
    assert fields["model"] == "grok-4.3" and fields["finish"] == "stop"
    assert fields["prompt_tokens"] > 0 and fields["completion_tokens"] > 0
    [charged] = await ledger(env)
    assert fields["cost_ticks"] == charged.cost_ticks == 7777
    assert fields["prompt_tokens"] == charged.prompt_tokens
    assert fields["reasoning_tokens"] == charged.reasoning_tokens
    assert 0 <= fields["first_token_s"] <= fields["total_s"]
    line = TextFormatter().format(record)
    assert "\n" not in line
    assert f"answer chat in {PLACE.key}: user {ALICE.id}, grok-4.3, " in line
    assert "$0.000000778" in line  # format_usd(7777 ticks) and "first token " in line and " total " in line
    assert QUESTION not in line and "Rayleigh" not in line  # ids and numbers, never the text


async def test_the_json_format_has_each_field_as_a_key(
    env: EngineEnv, caplog: pytest.LogCaptureFixture
) -> None:
    await env.say(QUESTION)
    [record] = answer_records(caplog)
    entry = json.loads(JsonFormatter().format(record))
    assert entry["level"] == "INFO" and entry["logger"] == "bot.answer_lines"
    for key in (
        "place", "user", "model", "prompt_tokens", "completion_tokens", "reasoning_tokens", "cost_ticks",
        "cost_usd", "first_token_s", "total_s",
    ):  # fmt: skip
        assert entry[key] == vars(record)[key], key
    assert entry["place"] == PLACE.key and isinstance(entry["total_s"], float)
    assert QUESTION not in json.dumps(entry)


async def test_generated_images_log_their_line_where_they_are_charged(
    env: EngineEnv, caplog: pytest.LogCaptureFixture
) -> None:
    await env.command("imagine", "a red fox in the snow", count="2")
    [record] = answer_records(caplog)
    fields = vars(record)
    assert (fields["answer"], fields["images"], fields["model"]) == ("image", 2, "grok-imagine-image")
    [charged] = await ledger(env)
    assert fields["cost_ticks"] == charged.cost_ticks > 0
    assert fields["first_token_s"] is None and fields["total_s"] >= 0
    assert "2 images" in record.getMessage() and "red fox" not in record.getMessage()


async def test_a_deferred_answer_logs_its_line_when_it_is_delivered_and_charged(
    env: EngineEnv, caplog: pytest.LogCaptureFixture, fake_xai: FakeXAI, grok: GrokClient, sessions: Any
) -> None:
    deferrals = with_deferrals(env, grok, sessions)
    fake_xai.queue_reply(ScriptedReply(text="Later.", deferred_pending_polls=1, cost_ticks=5000))
    await env.say(command=Command("ask", options={"defer": "true"}, text=QUESTION))
    assert not answer_records(caplog)  # submitted, not answered yet
    submitted = env.clock.now
    while not answer_records(caplog):
        assert env.clock.now - submitted < timedelta(minutes=5), "never delivered"
        env.clock.now += timedelta(seconds=40)
        await deferrals.poll_due()
    [record] = answer_records(caplog)
    fields = vars(record)
    assert (fields["answer"], fields["cost_ticks"], fields["user"]) == ("deferred", 5000, ALICE.id)
    assert fields["place"] == PLACE.key and fields["prompt_tokens"] > 0
    # From the submission to the delivery, on the engine's clock.
    assert fields["total_s"] == (env.clock.now - submitted).total_seconds()
    assert fields["first_token_s"] is None
