"""Search-backed answers through the real Bolt app and the fake Slack: the thread's status says what
is being searched, then the answer streams, then its sources; settings are an admin's."""

from __future__ import annotations

import pytest
from sqlmodel import select

from bot.platform import Capabilities
from bot.tables import UsageEvent
from tests.adapters.slack.conftest import ANA, BO, CY, GENERAL, StackFactory
from tests.fakes.xai import ScriptedCitation, ScriptedResponse, ScriptedTool

ANSWER = "Grok 4.7 shipped [[1]](https://x.ai/news) and X noticed [[2]](https://x.com/xai/status/1)."
SOURCES = "\n\n**Sources**\n1. [xAI news](<https://x.ai/news>)\n2. [@xai on X](<https://x.com/xai/status/1>)"
CITATIONS = (
    ScriptedCitation("https://x.ai/news", title="xAI news", marker=True),
    ScriptedCitation("https://x.com/xai/status/1", marker=True),
)


@pytest.fixture(autouse=True)
def quick_statuses(monkeypatch: pytest.MonkeyPatch) -> None:
    """Slack's status may change every 3 s; the searches below take a fraction of that."""
    monkeypatch.setattr("adapters.slack.reply.STATUS_EVERY_S", 0.2)


async def test_the_status_says_what_is_searched_then_the_answer_ends_with_its_sources(
    make_stack: StackFactory,
) -> None:
    stack = await make_stack(grokbot_xai_api="responses")
    stack.xai.time_scale = 0.02  # each search runs 0.6 to 0.8 s, three times the status interval
    searches = (
        ScriptedTool("web", "grok 4.7", sources=("https://x.ai/news",), seconds=30),
        ScriptedTool("x", "grok 4.7", seconds=40),
    )
    stack.xai.queue_response(
        ScriptedResponse(text=ANSWER, tools=searches, citations=CITATIONS, cost_ticks=987_654_321)
    )
    message, _ = await stack.sender.mention(GENERAL, ANA, "what shipped?")
    await stack.settle()
    shown = [(c.args.get("status"), c.at) for c in stack.slack.calls_to("assistant.threads.setStatus")]
    lines = [line for line, _ in shown]
    web, x = lines.index("🔎 Searching the web"), lines.index("🔎 Searching X for “grok 4.7”")
    assert web < x
    (answer,) = stack.answers(GENERAL, message.ts)
    assert answer.content == ANSWER + SOURCES
    first_words = min(c.at for c in stack.slack.calls if c.method in ("chat.startStream", "chat.postMessage"))
    assert shown[x][1] < first_words  # the searches showed before the answer began
    async with stack.engine.sessions() as session:
        (charge,) = (await session.exec(select(UsageEvent))).all()
    assert charge.cost_ticks == 987_654_321 and charge.tool_calls == 2


async def test_a_citation_at_a_message_split_stays_one_link(make_stack: StackFactory) -> None:
    small = Capabilities(
        max_message_length=80, edit_interval=0.2, native_streaming=False, max_upload_bytes=1 << 20,
        scope_edits_per_minute=600,
    )  # fmt: skip
    stack = await make_stack(grokbot_xai_api="responses", capabilities=small)
    text = "Here is a long opening sentence that runs on " + ANSWER
    stack.xai.queue_response(ScriptedResponse(text=text, citations=CITATIONS, chunk_chars=3))
    message, _ = await stack.sender.mention(GENERAL, ANA, "split it")
    await stack.settle()
    parts = [m.content for m in stack.answers(GENERAL, message.ts)]
    assert len(parts) > 2 and "".join(parts) == text + SOURCES
    for marker in ("[[1]](https://x.ai/news)", "[[2]](https://x.com/xai/status/1)"):
        assert sum(marker in part for part in parts) == 1


async def test_search_off_in_a_channel_sends_no_tools_and_only_admins_may_say_so(
    make_stack: StackFactory,
) -> None:
    stack = await make_stack(grokbot_xai_api="responses")
    await stack.sender.command("settings tools:none", user=BO, channel=GENERAL)
    await stack.settle()
    assert "Only admins" in stack.slack.ephemerals[-1]["text"]
    await stack.sender.command("settings tools:none", user=CY, channel=GENERAL)
    await stack.settle()
    assert "tools: none (no search, no code) — set for this channel" in stack.slack.ephemerals[-1]["text"]
    await stack.sender.mention(GENERAL, ANA, "anything new?")
    await stack.settle()
    (request,) = stack.xai.responses_requests()
    assert "tools" not in request.json and request.json["store"] is False
