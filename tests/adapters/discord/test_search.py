"""Search-backed answers through discord.py and the fake Discord: the response says what is being
searched, then the answer replaces it, ending with its sources; `/settings` is for server admins."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from adapters.discord.messages import no_previews
from adapters.discord.platform import CAPABILITIES
from bot.streaming.layout import settled
from tests.adapters.discord.conftest import Stack
from tests.fakes.xai import ScriptedCitation, ScriptedResponse, ScriptedTool

ANSWER = "Grok 4.7 shipped [[1]](https://x.ai/news) and X noticed [[2]](https://x.com/xai/status/1)."
# The citations as Discord shows them: masked links whose URLs in <…> get no preview.
SHOWN = "Grok 4.7 shipped [[1]](<https://x.ai/news>) and X noticed [[2]](<https://x.com/xai/status/1>)."
SOURCES = "\n\n**Sources**\n1. [xAI news](<https://x.ai/news>)\n2. [@xai on X](<https://x.com/xai/status/1>)"
CITATIONS = (
    ScriptedCitation("https://x.ai/news", title="xAI news", marker=True),
    ScriptedCitation("https://x.com/xai/status/1", marker=True),
)
WHILE_STREAMING = " ⚪"


async def test_the_response_says_what_is_searched_then_shows_the_answer_and_its_sources(
    stack_factory: Callable[..., Any],
) -> None:
    stack: Stack = await stack_factory(grokbot_xai_api="responses")
    fake, world = stack.fake, stack.world
    stack.xai.time_scale = 0.01  # 0.3 and 0.4 s of searching with keep-alives, then until shown
    web_shown, x_shown = asyncio.Event(), asyncio.Event()
    searches = (
        ScriptedTool("web", "grok 4.7", sources=("https://x.ai/news",), seconds=30, hold=web_shown),
        ScriptedTool("x", "grok 4.7", seconds=40, hold=x_shown),
    )
    stack.xai.queue_response(
        ScriptedResponse(
            text=ANSWER, tools=searches, citations=CITATIONS, cost_ticks=876_543_210, unknown_events=True
        )
    )
    asked = await fake.slash(
        "ask", {"prompt": "what shipped?"}, channel_id=world.general, user_id=world.alice
    )
    for line, shown in (("🔎 Searching the web", web_shown), ("🔎 Searching X for “grok 4.7”", x_shown)):
        # Discord's 1 s between status edits: the newer status waits for its turn.
        await fake.wait_until(lambda line=line: line in fake.versions(asked.original_id), within=30)  # type: ignore[misc]
        shown.set()
    await fake.wait_until(lambda: fake.versions(asked.original_id)[-1] == SHOWN + SOURCES)
    assert not fake.link_previews(asked.original_id)
    shown_versions = fake.versions(asked.original_id)
    web, x = (
        shown_versions.index("🔎 Searching the web"),
        shown_versions.index("🔎 Searching X for “grok 4.7”"),
    )
    first_words = next(i for i, version in enumerate(shown_versions) if version.startswith("Grok"))
    assert web < x < first_words
    await stack.idle()
    assert stack.xai.responses_requests()[-1].json["tools"][1]["type"] == "x_search"


async def test_a_mention_shows_what_is_searched_in_its_message_then_the_answer_replaces_it(
    stack_factory: Callable[..., Any],
) -> None:
    stack: Stack = await stack_factory(grokbot_xai_api="responses")
    fake, world = stack.fake, stack.world
    stack.xai.time_scale = 0.01
    web_shown, x_shown = asyncio.Event(), asyncio.Event()
    searches = (
        ScriptedTool("web", "grok 4.7", sources=("https://x.ai/news",), seconds=30, hold=web_shown),
        ScriptedTool("x", "grok 4.7", seconds=40, hold=x_shown),
    )
    stack.xai.queue_response(ScriptedResponse(text=ANSWER, tools=searches, citations=CITATIONS))
    await fake.user_message(world.general, world.alice, "what shipped?", mention_bot=True)

    def versions() -> list[str]:
        return [v for m in fake.bot_messages(world.general) for v in fake.versions(m["id"])]

    for line, shown in (("🔎 Searching the web", web_shown), ("🔎 Searching X for “grok 4.7”", x_shown)):
        await fake.wait_until(lambda line=line: line in versions(), within=30)  # type: ignore[misc]
        shown.set()
    await fake.wait_until(lambda: bool(versions()) and versions()[-1] == SHOWN + SOURCES)
    await stack.idle()
    (answer,) = fake.bot_messages(world.general)  # the status message became the answer
    shown_versions = fake.versions(answer["id"])
    web, x = (
        shown_versions.index("🔎 Searching the web"),
        shown_versions.index("🔎 Searching X for “grok 4.7”"),
    )
    first_words = next(i for i, version in enumerate(shown_versions) if version.startswith("Grok"))
    assert web < x < first_words
    assert not fake.link_previews(answer["id"])


@pytest.mark.parametrize("how", ["ask", "mention"])
async def test_a_search_is_said_at_once_not_after_the_status_interval(
    stack_factory: Callable[..., Any], monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    slow = replace(CAPABILITIES, edit_interval=60.0)  # statuses paced far apart…
    monkeypatch.setattr("adapters.discord.platform.CAPABILITIES", slow)
    stack: Stack = await stack_factory(grokbot_xai_api="responses")
    fake, world = stack.fake, stack.world
    shown = asyncio.Event()
    search = ScriptedTool("web", "grok 4.7", sources=("https://x.ai/news",), seconds=1, hold=shown)
    stack.xai.queue_response(ScriptedResponse(text=ANSWER, tools=(search,), citations=CITATIONS))
    if how == "ask":
        await fake.slash("ask", {"prompt": "what shipped?"}, channel_id=world.general, user_id=world.alice)
    else:
        await fake.user_message(world.general, world.alice, "what shipped?", mention_bot=True)

    def said() -> bool:  # …yet the search is said right after the first status
        ids = [m["id"] for m in fake.channel_messages(world.general)]
        return any("🔎 Searching the web" in fake.versions(i) for i in ids)

    await fake.wait_until(said, within=5)
    shown.set()
    await stack.idle()


async def test_a_citation_on_the_2000_character_split_stays_one_link(
    stack_factory: Callable[..., Any],
) -> None:
    stack: Stack = await stack_factory(grokbot_xai_api="responses")
    fake, world = stack.fake, stack.world
    limit = CAPABILITIES.max_message_length
    words = (limit - len("Grok 4.7 shipped ") - 10) // 5
    text = "word " * words + ANSWER  # the first marker starts 10 characters before the limit
    assert 5 * words + 17 < limit < 5 * words + 17 + len("[[1]](https://x.ai/news)")
    stack.xai.queue_response(
        ScriptedResponse(text=text, citations=CITATIONS, chunk_chars=7, tokens_per_second=400)
    )
    await fake.user_message(world.general, world.alice, "a long one", mention_bot=True)
    await fake.wait_until(
        lambda: any(m["content"].endswith("status/1>)") for m in fake.bot_messages(world.general))
    )
    await stack.idle()
    messages = fake.bot_messages(world.general)
    assert len(messages) == 2
    for marker in ("[[1]](<https://x.ai/news>)", "[[2]](<https://x.com/xai/status/1>)"):
        assert sum(marker in m["content"] for m in messages) == 1
    for message in messages:
        assert not fake.link_previews(message["id"])
        for version in fake.versions(message["id"]):
            body = version.removesuffix(WHILE_STREAMING)
            assert settled(body) == len(body) and len(version) <= 2000  # never half a link, not mid-stream


async def test_many_sources_go_on_in_the_next_message_numbered_whole_and_without_previews(
    stack_factory: Callable[..., Any],
) -> None:
    stack: Stack = await stack_factory(grokbot_xai_api="responses")
    fake, world = stack.fake, stack.world
    pages = [f"https://example.org/{n:02}/" + "a" * 60 for n in range(1, 31)]
    cited = tuple(ScriptedCitation(url, title=f"Page {n} " + "t" * 60) for n, url in enumerate(pages, 1))
    twice = (*cited, ScriptedCitation(pages[0] + "/", title="Page 1 again"))  # the same page again
    stack.xai.queue_response(ScriptedResponse(text="Thirty pages say so.", citations=twice))
    await fake.user_message(world.general, world.alice, "sources?", mention_bot=True)
    await fake.wait_until(lambda: any(pages[-1] in m["content"] for m in fake.bot_messages(world.general)))
    await stack.idle()
    messages = fake.bot_messages(world.general)
    assert len(messages) == 3 and messages[0]["content"].startswith("Thirty pages say so.\n\n**Sources**")
    lines = [line for m in messages for line in m["content"].split("\n") if line[:1].isdigit()]
    assert lines == [f"{n}. [Page {n} {'t' * 60}](<{url}>)" for n, url in enumerate(pages, 1)]
    for message in messages:
        assert len(message["content"]) <= 2000 and not fake.link_previews(message["id"])


async def test_reasoning_is_kept_after_the_answer_in_a_spoiler(stack_factory: Callable[..., Any]) -> None:
    stack: Stack = await stack_factory(grokbot_xai_api="responses")
    fake, world = stack.fake, stack.world
    summary = "Weigh the two sources | then answer."
    stack.xai.queue_response(ScriptedResponse(text="Forty-two.", reasoning=summary))
    asked = await fake.slash(
        "ask", {"prompt": "what is it?", "reasoning": "high"}, channel_id=world.general, user_id=world.alice
    )
    await fake.wait_until(lambda: len(fake.bot_messages(world.general)) == 2)
    await stack.idle()
    answer, kept = fake.bot_messages(world.general)
    assert answer["id"] == asked.original_id and answer["content"].endswith("Forty-two.")
    assert "Weigh" not in answer["content"]  # collapsed: not in the answer
    assert kept["content"] == "💭 **Reasoning** (tap to reveal)\n||Weigh the two sources \\| then answer.||"
    assert kept["message_reference"]["message_id"] == answer["id"]


async def test_settings_are_refused_to_members_and_search_off_sends_no_tools(
    stack_factory: Callable[..., Any],
) -> None:
    stack: Stack = await stack_factory(grokbot_xai_api="responses")
    fake, world = stack.fake, stack.world
    refused = await fake.slash("settings", {"tools": "none"}, channel_id=world.general, user_id=world.alice)
    await fake.wait_until(lambda: "Only admins" in "".join(fake.versions(refused.original_id)))
    done = await fake.slash("settings", {"tools": "none"}, channel_id=world.general, user_id=world.admin)
    await fake.wait_until(lambda: "✅ Saved for this channel" in "".join(fake.versions(done.original_id)))
    asked = await fake.slash("ask", {"prompt": "news?"}, channel_id=world.general, user_id=world.alice)
    await fake.wait_until(
        lambda: bool(asked.original_id) and fake.versions(asked.original_id)[-1].startswith("Echo")
    )
    (request,) = stack.xai.responses_requests()
    assert "tools" not in request.json


def test_links_lose_their_previews_but_not_inside_code_nor_past_the_limit() -> None:
    text = "See [[1]](https://x.ai/news) and [docs](<https://docs.x.ai>).\n```\n[a](https://in.code)\n```\n[b](http://b.c)"
    assert no_previews(text) == (
        "See [[1]](<https://x.ai/news>) and [docs](<https://docs.x.ai>).\n```\n[a](https://in.code)\n```\n"
        "[b](<http://b.c>)"
    )
    links = " ".join(f"[{n}](https://e.x/{n})" for n in range(3))
    assert (
        no_previews(links, limit=len(links) + 4)
        == "[0](<https://e.x/0>) [1](<https://e.x/1>) [2](https://e.x/2)"
    )
