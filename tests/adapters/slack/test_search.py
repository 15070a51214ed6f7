"""Search-backed answers through the real Bolt app and the fake Slack: the thread's status says what
is being searched, then the answer streams, then its sources; settings are an admin's."""

from __future__ import annotations

import asyncio
import re

import pytest
from sqlmodel import select

from adapters.slack.native import sources_blocks
from adapters.slack.reply import status_line, status_placeholder
from bot.platform import Capabilities, SourceLink
from bot.tables import UsageEvent
from tests.adapters.slack.conftest import ANA, BO, CY, GENERAL, StackFactory
from tests.fakes.slack import FakeMessage
from tests.fakes.xai import ScriptedCitation, ScriptedResponse, ScriptedTool

ANSWER = "Grok 4.7 shipped [[1]](https://x.ai/news) and X noticed [[2]](https://x.com/xai/status/1)."
CITATIONS = (
    ScriptedCitation("https://x.ai/news", title="xAI news", marker=True),
    ScriptedCitation("https://x.com/xai/status/1", marker=True),
)


@pytest.fixture(autouse=True)
def quick_statuses(monkeypatch: pytest.MonkeyPatch) -> None:
    """Slack's status may change every 3 s; the searches below take a fraction of that."""
    monkeypatch.setattr("adapters.slack.reply.STATUS_EVERY_S", 0.2)


def _searches(web_shown: asyncio.Event, x_shown: asyncio.Event) -> tuple[ScriptedTool, ...]:
    return (
        ScriptedTool("web", "grok 4.7", sources=("https://x.ai/news",), seconds=30, hold=web_shown),
        ScriptedTool("x", "grok 4.7", seconds=40, hold=x_shown),
    )


def _context_links(message: FakeMessage) -> list[str]:
    """The links of a message's context blocks, in order: <url|label> as Slack's mrkdwn has them."""
    texts = [e["text"] for b in message.blocks if b["type"] == "context" for e in b["elements"]]
    return re.findall(r"<([^|>]+)\|([^>]+)>", " ".join(texts))


async def test_each_search_is_a_task_card_then_the_answer_then_its_sources_as_links(
    make_stack: StackFactory,
) -> None:
    stack = await make_stack(grokbot_xai_api="responses")
    stack.xai.time_scale = 0.01  # 0.3 and 0.4 s of searching with keep-alives, then until shown
    web_shown, x_shown = asyncio.Event(), asyncio.Event()
    scripted = ScriptedResponse(
        text=ANSWER, tools=_searches(web_shown, x_shown), citations=CITATIONS, cost_ticks=987_654_321,
        unknown_events=True,
    )  # fmt: skip
    stack.xai.queue_response(scripted)
    message, _ = await stack.sender.mention(GENERAL, ANA, "what shipped?")

    def tasks() -> list[tuple[str, str]]:
        return [(t["title"], t["status"]) for m in stack.answers(GENERAL, message.ts) for t in m.tasks]

    for title, shown in (("🔎 Searching the web", web_shown), ("🔎 Searching X for “grok 4.7”", x_shown)):
        await stack.slack.wait_until(lambda title=title: (title, "in_progress") in tasks())  # type: ignore[misc]
        assert all(not m.content for m in stack.answers(GENERAL, message.ts))  # no answer text yet
        shown.set()
    await stack.settle()
    (answer,) = stack.answers(GENERAL, message.ts)
    # One stream: the cards as the searches begin and end (the web's with what it found), then the text.
    steps = [(t["id"], t["status"]) for t in answer.tasks]
    web, x = steps[0][0], steps[-1][0]
    assert web != x
    assert [step for n, step in enumerate(steps) if step not in steps[:n]] == [
        (web, "in_progress"), (web, "complete"), (x, "in_progress"), (x, "complete"),
    ]  # fmt: skip
    (web_done,) = [t for t in answer.tasks if t["id"] == web and t["status"] == "complete"]
    assert web_done["title"] == "🔎 Searched the web for “grok 4.7”"
    assert web_done["sources"] == [{"type": "url", "url": "https://x.ai/news", "text": "x.ai/news"}]
    assert answer.tasks[-1]["title"] == "🔎 Searched X for “grok 4.7”"
    assert stack.slack.calls_to("chat.startStream")[0].args.get("markdown_text") is None  # a card first
    # The exact answer text, its sources once, in order, as a context block of links (no Markdown list).
    assert answer.content == ANSWER and not answer.streaming
    assert _context_links(answer) == [
        ("https://x.ai/news", "xAI news"),
        ("https://x.com/xai/status/1", "@xai on X"),
    ]
    assert [b["type"] for b in answer.blocks] == ["context", "context_actions"]  # sources, then feedback
    statuses = [c.args.get("status", "") for c in stack.slack.calls_to("assistant.threads.setStatus")]
    assert not any("Search" in s for s in statuses)  # the cards say it: no status line about it
    async with stack.engine.sessions() as session:
        (charge,) = (await session.exec(select(UsageEvent))).all()
    assert charge.cost_ticks == 987_654_321 and charge.tool_calls == 2
    assert stack.xai.keepalives_sent == 3  # 15 s apart in the fake's time: one in 30 s, two in 40 s


async def test_without_streams_the_status_says_what_is_searched_and_the_sources_end_the_message(
    make_stack: StackFactory,
) -> None:
    stack = await make_stack(grokbot_xai_api="responses")
    stack.slack.fail["chat.startStream"].append("unknown_method")  # this workspace has no streams
    stack.xai.time_scale = 0.01
    web_shown, x_shown = asyncio.Event(), asyncio.Event()
    stack.xai.queue_response(
        ScriptedResponse(text=ANSWER, tools=_searches(web_shown, x_shown), citations=CITATIONS)
    )
    message, _ = await stack.sender.mention(GENERAL, ANA, "what shipped?")

    def statuses() -> list[str]:
        return [c.args.get("status", "") for c in stack.slack.calls_to("assistant.threads.setStatus")]

    for line, shown in (("🔎 Searching the web", web_shown), ("🔎 Searching X for “grok 4.7”", x_shown)):
        await stack.slack.wait_until(lambda line=line: line in statuses())  # type: ignore[misc]
        assert not stack.answers(GENERAL, message.ts)  # the answer has not begun
        shown.set()
    await stack.settle()
    (answer,) = stack.answers(GENERAL, message.ts)
    assert stack.slack.calls_to("chat.postMessage") and not answer.tasks  # posted, not streamed
    assert answer.content == ANSWER
    assert _context_links(answer) == [
        ("https://x.ai/news", "xAI news"),
        ("https://x.com/xai/status/1", "@xai on X"),
    ]


@pytest.mark.parametrize("where", ["thread", "top level"])
async def test_without_a_stream_a_search_is_said_at_once_not_after_the_status_interval(
    make_stack: StackFactory, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    monkeypatch.setattr("adapters.slack.reply.STATUS_EVERY_S", 60.0)  # statuses paced far apart…
    monkeypatch.setattr("adapters.slack.reply.PLACEHOLDER_EVERY_S", 60.0)
    stack = await make_stack(grokbot_xai_api="responses")
    stack.slack.fail["chat.startStream"].append("unknown_method")
    shown = asyncio.Event()
    search = ScriptedTool("web", "grok 4.7", sources=("https://x.ai/news",), seconds=1, hold=shown)
    stack.xai.queue_response(ScriptedResponse(text=ANSWER, tools=(search,), citations=CITATIONS))
    if where == "thread":
        await stack.sender.mention(GENERAL, ANA, "what shipped?")
    else:
        await stack.sender.command("ask what shipped?", user=ANA, channel=GENERAL)

    def said() -> bool:  # …yet the search is said right after the first status ("✍️ Writing…")
        statuses = [c.args.get("status", "") for c in stack.slack.calls_to("assistant.threads.setStatus")]
        placeholders = [v for m in stack.slack.bot_messages(GENERAL) for _, v in m.versions]
        return "🔎 Searching the web" in statuses or "_🔎 Searching the web_" in placeholders

    await stack.slack.wait_until(said, within=5)
    shown.set()
    await stack.settle()


@pytest.mark.parametrize("method", ["chat.stopStream", "chat.postMessage"])
async def test_sources_refused_as_a_block_are_listed_under_the_text_instead(
    make_stack: StackFactory, method: str
) -> None:
    stack = await make_stack(grokbot_xai_api="responses")
    stack.slack.fail[method].append("invalid_blocks")  # Slack refuses the end blocks once
    streamed = method == "chat.stopStream"  # slow enough to stream, else posted whole at the end
    stack.xai.queue_response(
        ScriptedResponse(text=ANSWER, citations=CITATIONS, tokens_per_second=20 if streamed else None)
    )
    message, _ = await stack.sender.mention(GENERAL, ANA, "what shipped?")
    await stack.settle()
    (answer,) = stack.answers(GENERAL, message.ts)
    assert bool(stack.slack.calls_to("chat.startStream")) is streamed
    listed = (
        "\n\n**Sources**\n1. [xAI news](<https://x.ai/news>)\n2. [@xai on X](<https://x.com/xai/status/1>)"
    )
    assert answer.content == ANSWER + listed and not answer.blocks and not answer.streaming


async def test_reasoning_stays_behind_a_button_that_shows_it_to_whoever_asks(
    make_stack: StackFactory,
) -> None:
    stack = await make_stack(grokbot_xai_api="responses")
    summary = "First I weigh the <sources>.\nThen I answer & cite."
    stack.xai.queue_response(ScriptedResponse(text="Forty-two.", reasoning=summary, first_token_delay=0.3))
    await stack.sender.command("ask reasoning:high what is it?", user=ANA, channel=GENERAL)
    await stack.settle()
    (answer,) = stack.slack.bot_messages(GENERAL)
    assert answer.content.startswith("_Thought for") and answer.content.endswith("Forty-two.")
    assert summary not in answer.content  # collapsed: not in the answer's text
    (button,) = [e for b in answer.blocks if b["type"] == "actions" for e in b["elements"]]
    assert button["value"] == summary.strip()
    await stack.sender.click(answer, button["action_id"], user=BO)
    await stack.slack.wait_until(lambda: any(e["user"] == BO for e in stack.slack.ephemerals))
    (shown,) = [e for e in stack.slack.ephemerals if e["user"] == BO]
    assert "First I weigh the &lt;sources&gt;." in shown["text"] and "I answer &amp; cite" in shown["text"]
    assert shown["channel"] == GENERAL and shown["thread_ts"] == ""  # where the answer is


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
    messages = stack.answers(GENERAL, message.ts)
    parts = [m.content for m in messages]
    assert len(parts) == 2 and "".join(parts) == text
    assert not _context_links(messages[0])  # the sources end the answer's last message
    assert [url for url, _ in _context_links(messages[1])] == [
        "https://x.ai/news",
        "https://x.com/xai/status/1",
    ]
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


def test_a_status_quoting_reasoning_keeps_its_latest_line_on_slack() -> None:
    thinking = "💭 Thinking… 6 s\n> weighing the two sources against each other"
    # The thread's one-line status: the seconds, then what Grok is thinking now.
    assert status_line(thinking) == "💭 Thinking… 6 s · weighing the two sources against each other"
    assert len(status_line(thinking + " at length" * 20)) == 100
    assert status_line("🔎 Searching the web") == "🔎 Searching the web"
    # A placeholder message (outside threads) shows both lines.
    assert status_placeholder(thinking) == "_💭 Thinking… 6 s_\n> weighing the two sources against each other"
    assert status_placeholder("✍️ Writing…") == "_✍️ Writing…_"


def test_the_sources_block_escapes_titles_and_fits_block_kit() -> None:
    odd = SourceLink("https://example.com/a|b", title="Tom & <Jerry> | the | pipes")
    (block,) = sources_blocks([odd])
    assert block.to_dict()["elements"][0]["text"] == (
        "*Sources*  1. <https://example.com/a%7Cb|Tom &amp; &lt;Jerry&gt; ¦ the ¦ pipes>"
    )
    many = [
        SourceLink(f"https://example.com/{n}/" + "p" * 100, title=f"Page {n} " + "t" * 100)
        for n in range(300)
    ]
    (block,) = sources_blocks(many)
    texts = [e["text"] for e in block.to_dict()["elements"]]
    assert len(texts) == 10 and all(len(t) <= 3000 for t in texts)
    numbers = [int(n) for n in re.findall(r"(?:^|\s)(\d+)\. <", " ".join(texts))]
    assert numbers == list(range(1, len(numbers) + 1))  # in order, none skipped
    assert texts[-1] == f"… and {300 - len(numbers)} more"
