"""Search-backed answers end to end on the Responses API: the real Grok client over the loopback xAI
fake, a recording platform and a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import pytest
from sqlmodel import select

from bot.grok import GrokClient
from bot.platform import Attachment, Author, Command
from bot.store import conversations as conversations_mod
from bot.streaming.layout import settled
from bot.tables import UsageEvent
from tests.bot.engine_env import PLACE, EngineEnv, build
from tests.fakes.platform import DEFAULT_CAPABILITIES, FakePlatform
from tests.fakes.xai import FakeXAI, ScriptedCitation, ScriptedReply, ScriptedResponse, ScriptedTool, tiny_png

ADA = Author("U9", "ada", is_admin=True)
WEB = ("https://x.ai/news", "https://example.com/grok")
POST = "https://twitter.com/xai/status/1"
ANSWER = "xAI shipped Grok 4.7 [[1]](https://x.ai/news), and people on X liked it [[2]](https://twitter.com/xai/status/1)."
SEARCHED = ScriptedResponse(
    text=ANSWER,
    tools=(ScriptedTool("web", "grok 4.7 release", sources=WEB), ScriptedTool("x", "grok 4.7")),
    citations=(
        ScriptedCitation(WEB[0], title="xAI news", marker=True),
        ScriptedCitation(POST, marker=True),
        ScriptedCitation(WEB[1]),
    ),
    cost_ticks=2_345_678_901,
)
LISTED = (
    "\n\n**Sources**\n1. [xAI news](<https://x.ai/news>)\n2. [@xai on X](<https://x.com/xai/status/1>)"
    "\n3. [example.com/grok](<https://example.com/grok>)"
)


@pytest.fixture
def env(fake_xai: FakeXAI, grok: GrokClient, sessions: Any) -> EngineEnv:
    return build(fake_xai, grok, sessions, grokbot_xai_api="responses")


def statuses(env: EngineEnv) -> list[str]:
    return [e.text for e in env.platform.events if e.kind == "status"]


async def charges(env: EngineEnv) -> list[UsageEvent]:
    async with env.engine.sessions() as session:
        return list((await session.exec(select(UsageEvent))).all())


async def test_a_searched_answer_shows_its_searches_then_the_answer_then_its_sources(env: EngineEnv) -> None:
    env.fake.queue_response(SEARCHED)
    await env.say("what did xAI ship?")
    shown = statuses(env)
    web, x = shown.index("🔎 Searching the web"), shown.index("🔎 Searching X for “grok 4.7”")
    assert shown[0] == "✍️ Writing…" and 0 < web < x
    assert env.platform.visible_text() == ANSWER + LISTED
    assert env.platform.last.final
    body = env.fake.responses_requests()[-1].json
    assert body["store"] is False and body["stream"] is True and body["max_turns"] == 3
    assert [tool["type"] for tool in body["tools"]] == ["web_search", "x_search"]
    assert "tool_choice" not in body and env.fake.chat_requests() == []


async def test_the_charge_is_xais_cost_with_the_tool_calls_and_their_part(env: EngineEnv) -> None:
    env.fake.queue_response(SEARCHED)
    await env.say("what did xAI ship?")
    (charge,) = await charges(env)
    assert charge.cost_ticks == SEARCHED.cost_ticks  # cost_in_usd_ticks, tools included
    assert charge.tool_calls == 2
    assert charge.tool_cost_ticks == 50_000_000 + 20 * 50_000_000  # one web search, 20 X posts
    await env.command("usage")
    assert "Searches and code runs this month: 2 ($0.105" in env.platform.last.text


async def test_the_history_keeps_the_sources_and_sends_them_again_compactly(env: EngineEnv) -> None:
    env.fake.queue_response(
        ScriptedResponse(text="It did.", tools=(ScriptedTool("web", "q", sources=WEB),), citations=(
            ScriptedCitation(WEB[0]), ScriptedCitation(WEB[1]))
        )
    )  # fmt: skip
    await env.say("did it?")
    await env.say("say more")
    conversation = await conversations_mod.find_conversation(env.engine.sessions, PLACE)
    assert conversation is not None
    (answer,) = [
        t for t in await conversations_mod.recent_turns(env.engine.sessions, conversation.id) if t.model
    ][:1]
    assert [s.url for s in answer.sources] == list(WEB)
    items = env.fake.responses_requests()[-1].json["input"]
    assert [i["role"] for i in items] == ["system", "user", "assistant", "user"]
    assert items[2]["content"] == f"It did.\n\nSources: {WEB[0]} {WEB[1]}"


async def test_an_attached_image_is_searchable_context(env: EngineEnv) -> None:
    image = Attachment("cat.png", "image/png", len(tiny_png()), data=tiny_png())
    await env.say("what is this, and is it in the news?", attachments=(image,))
    body = env.fake.responses_requests()[-1].json
    assert [part["type"] for part in body["input"][-1]["content"]] == ["input_text", "input_image"]
    assert all(tool["enable_image_understanding"] is True for tool in body["tools"])


async def test_a_channel_with_search_off_sends_no_tools(env: EngineEnv) -> None:
    await env.say(command=Command("settings", {"tools": "none"}), author=ADA)
    await env.say("anything new?")
    body = env.fake.responses_requests()[-1].json
    assert "tools" not in body and "max_turns" not in body


async def test_the_ask_option_narrows_the_search_and_cannot_widen_it(env: EngineEnv) -> None:
    await env.command("ask", "news?", search="web")
    assert [t["type"] for t in env.fake.responses_requests()[-1].json["tools"]] == ["web_search"]
    await env.command("ask", "news?", search="off")
    assert "tools" not in env.fake.responses_requests()[-1].json
    await env.say(command=Command("settings", {"tools": "web"}), author=ADA)
    await env.command("ask", "news?", search="x")
    assert "X search is turned off here" in env.platform.last.text
    assert len(env.fake.responses_requests()) == 2


async def test_settings_by_someone_not_an_admin_are_refused(env: EngineEnv) -> None:
    await env.say(command=Command("settings", {"tools": "none"}))
    assert "Only admins" in env.platform.last.text and env.platform.last.private_to == "U1"
    await env.say("news?")
    assert len(env.fake.responses_requests()[-1].json["tools"]) == 2  # nothing changed


async def test_an_admin_sets_the_filters_and_the_default_model(env: EngineEnv) -> None:
    options = {
        "domains": "-spam.example,-ads.example",
        "handles": "@xai,grok",
        "model": "grok-4.20-0309-reasoning",
    }
    await env.say(command=Command("settings", options), author=ADA)
    shown = env.platform.last.text
    assert "✅ Saved for this channel" in shown and "only @xai, @grok — set for this channel" in shown
    await env.say("news?")
    body = env.fake.responses_requests()[-1].json
    web, x = body["tools"]
    assert web["excluded_domains"] == ["spam.example", "ads.example"] and x["allowed_x_handles"] == [
        "xai",
        "grok",
    ]
    assert body["model"] == "grok-4.20-0309-reasoning"


async def test_an_x_search_of_40_seconds_with_keep_alives_completes(env: EngineEnv) -> None:
    env.fake.time_scale = 0.01  # 40 s of searching in 0.4 s, a keep-alive every 15 s
    env.fake.queue_response(ScriptedResponse(text="Found it.", tools=(ScriptedTool("x", "q", seconds=40),)))
    await env.say("what are people saying?")
    assert env.fake.keepalives_sent == 2
    assert env.platform.visible_text() == "Found it."


async def test_unknown_event_and_item_types_are_ignored(env: EngineEnv) -> None:
    env.fake.queue_response(
        ScriptedResponse(text="Still fine.", unknown_events=True, event_lines=True, done_marker=True)
    )
    await env.say("hi")
    assert env.platform.visible_text() == "Still fine." and len(await charges(env)) == 1


async def test_a_citation_split_across_messages_stays_one_link(
    fake_xai: FakeXAI, grok: GrokClient, sessions: Any
) -> None:
    capabilities = DEFAULT_CAPABILITIES.__class__(**{**vars(DEFAULT_CAPABILITIES), "max_message_length": 60})
    env = build(
        fake_xai,
        grok,
        sessions,
        platform=FakePlatform(capabilities=capabilities),
        grokbot_xai_api="responses",
    )
    text = "A first clause of words that runs long [[1]](https://x.ai/a-long-path/news) and then more words."
    env.fake.queue_response(
        ScriptedResponse(
            text=text, citations=(ScriptedCitation("https://x.ai/a-long-path/news", marker=True),)
        )
    )
    await env.say("split it")
    bodies = [m.text for m in env.platform.messages]
    assert len(bodies) > 2 and "".join(bodies).startswith(text)
    assert sum("[[1]](https://x.ai/a-long-path/news)" in body for body in bodies) == 1
    updates = [e.text for e in env.platform.events if e.kind == "update"]
    assert all(settled(body) == len(body) for body in updates)  # never half a link in an edit


async def test_code_runs_are_shown_as_code_blocks_where_an_admin_allows_them(env: EngineEnv) -> None:
    await env.say(command=Command("settings", {"tools": "code"}), author=ADA)
    run = ScriptedTool("code", "print(17 * 19)", output="323\n")
    env.fake.queue_response(ScriptedResponse(text="It is 323.", tools=(run,)))
    await env.say("17 times 19?")
    assert "🧮 Running code" in statuses(env)
    assert (
        env.platform.visible_text()
        == "It is 323.\n\n```python\nprint(17 * 19)\n```\nOutput:\n```text\n323\n```"
    )
    assert [t["type"] for t in env.fake.responses_requests()[-1].json["tools"]] == ["code_interpreter"]


async def test_a_budget_too_small_for_the_whole_search_allowance_buys_fewer_tool_calls(
    env: EngineEnv,
) -> None:
    subject = env_subject()
    await env.engine.quotas.set_override(subject, daily_ticks=2_000_000_000, set_by="U0")  # $0.20
    await env.say("news?")
    cut = env.fake.responses_requests()[-1].json
    assert [t["type"] for t in cut["tools"]] == ["web_search", "x_search"]
    assert cut["max_turns"] == 1  # one tool turn is what $0.20 covers beside the answer, not three
    await env.engine.quotas.set_override(subject, daily_ticks=200_000_000, set_by="U0")  # $0.02 a day
    env.clock.now += timedelta(days=1)
    await env.say("more news?")
    plain = env.fake.responses_requests()[-1].json
    assert "tools" not in plain and "max_turns" not in plain  # not one call fits: answered without
    assert len(env.fake.responses_requests()) == 2
    await env.engine.quotas.set_override(subject, daily_ticks=1_000, set_by="U0")  # far too little
    env.clock.now += timedelta(days=1)
    await env.say("and now?")
    assert "limit" in env.platform.last.text.lower() and len(env.fake.responses_requests()) == 2


def env_subject() -> Any:
    from bot.quotas import Subject

    return Subject(PLACE.platform, PLACE.workspace, "U1")


async def test_a_platform_that_shows_activities_and_sources_itself_gets_them_through_the_hooks(
    fake_xai: FakeXAI, grok: GrokClient, sessions: Any
) -> None:
    env = build(fake_xai, grok, sessions, platform=FakePlatform(native=True), grokbot_xai_api="responses")
    env.fake.queue_response(SEARCHED)
    await env.say("what did xAI ship?")
    assert statuses(env) == ["✍️ Writing…"]  # activities are the reply's own to show
    message = env.platform.last
    titles = [(a.status, a.title) for a in message.activities]
    assert titles[0] == ("in_progress", "🔎 Searching the web")
    assert ("complete", "🔎 Searched the web for “grok 4.7 release”") in titles
    done = next(a for a in message.activities if a.status == "complete" and a.kind == "web")
    assert [s.url for s in done.sources] == list(WEB)
    assert [(s.url, s.title) for s in message.sources][:2] == [
        (WEB[0], "xAI news"),
        ("https://x.com/xai/status/1", ""),
    ]
    assert message.text == ANSWER  # the list is the reply's, not the text's


async def test_an_endpoint_without_the_responses_api_is_answered_on_chat_completions(
    env: EngineEnv, caplog: pytest.LogCaptureFixture
) -> None:
    env.fake.serve_responses = False
    env.fake.queue_reply(ScriptedReply(text="From chat."))
    with caplog.at_level(logging.WARNING):
        await env.say("hello")
    assert env.platform.visible_text() == "From chat."
    assert any("does not serve /v1/responses" in r.getMessage() for r in caplog.records)
    await env.say("again")
    asked = [r.json.get("model") for r in env.fake.responses_requests()]
    assert asked == ["grok-4.3", None]  # the answer, then the probe that confirmed the route is missing
    assert len(env.fake.chat_requests()) == 2


async def test_an_unknown_model_is_refused_without_leaving_the_responses_api(env: EngineEnv) -> None:
    await env.command("ask", "hello", model="grok-imaginary-9")  # xAI answers 404 for it too
    assert "check its name" in env.platform.last.failed
    await env.say("hello")
    assert env.platform.visible_text().endswith("Echo: [alice] hello")
    assert env.fake.chat_requests() == [] and env.fake.responses_requests()[-1].json["model"] == "grok-4.3"


async def test_chat_completions_when_the_operator_says_so(
    fake_xai: FakeXAI, grok: GrokClient, sessions: Any
) -> None:
    env = build(fake_xai, grok, sessions, grokbot_xai_api="chat")
    await env.say("hello")
    assert len(env.fake.chat_requests()) == 1 and env.fake.responses_requests() == []
    await env.command("ask", "news?", search="web")
    assert "not available" in env.platform.last.text


async def test_deferred_answers_stay_on_chat_completions(
    fake_xai: FakeXAI, grok: GrokClient, sessions: Any
) -> None:
    from bot.engine import Engine
    from bot.jobs import Deferrals, DeferredRequests

    env = build(fake_xai, grok, sessions, grokbot_xai_api="responses")
    engine = env.engine
    deferrals = Deferrals(DeferredRequests(sessions, clock=env.clock, instance_id="t"), grok=grok,
                          quotas=env.quotas, platforms={"fake": env.platform}, clock=env.clock)  # fmt: skip
    env.engine = Engine(
        engine.settings, grok=grok, sessions=sessions, quotas=env.quotas, clock=env.clock, deferrals=deferrals
    )
    await env.command("ask", "slowly", defer="true")
    (request,) = env.fake.chat_requests()
    assert request.json["deferred"] is True and env.fake.responses_requests() == []
