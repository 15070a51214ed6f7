"""Search-backed answers through the real Bolt app and the fake Slack: the thread's status says what
is being searched, then the answer streams, then its sources; settings are an admin's."""

from __future__ import annotations

import asyncio

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
    stack.xai.time_scale = 0.01  # 0.3 and 0.4 s of searching with keep-alives, then until shown
    web_shown, x_shown = asyncio.Event(), asyncio.Event()
    searches = (
        ScriptedTool("web", "grok 4.7", sources=("https://x.ai/news",), seconds=30, hold=web_shown),
        ScriptedTool("x", "grok 4.7", seconds=40, hold=x_shown),
    )
    scripted = ScriptedResponse(
        text=ANSWER, tools=searches, citations=CITATIONS, cost_ticks=987_654_321, unknown_events=True
    )
    stack.xai.queue_response(scripted)
    message, _ = await stack.sender.mention(GENERAL, ANA, "what shipped?")

    def statuses() -> list[str]:
        return [c.args.get("status", "") for c in stack.slack.calls_to("assistant.threads.setStatus")]

    for line, shown in (("🔎 Searching the web", web_shown), ("🔎 Searching X for “grok 4.7”", x_shown)):
        await stack.slack.wait_until(lambda line=line: line in statuses())  # type: ignore[misc]
        assert not stack.answers(GENERAL, message.ts)  # the answer has not begun
        shown.set()
    await stack.settle()
    (answer,) = stack.answers(GENERAL, message.ts)
    assert answer.content == ANSWER + SOURCES
    async with stack.engine.sessions() as session:
        (charge,) = (await session.exec(select(UsageEvent))).all()
    assert charge.cost_ticks == 987_654_321 and charge.tool_calls == 2
    assert stack.xai.keepalives_sent == 3  # 15 s apart in the fake's time: one in 30 s, two in 40 s


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
