"""Search-backed answers through discord.py and the fake Discord: the response says what is being
searched, then the answer replaces it, ending with its sources; `/settings` is for server admins."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from bot.streaming.layout import settled
from tests.adapters.discord.conftest import Stack
from tests.fakes.xai import ScriptedCitation, ScriptedResponse, ScriptedTool

ANSWER = "Grok 4.7 shipped [[1]](https://x.ai/news) and X noticed [[2]](https://x.com/xai/status/1)."
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
    await fake.wait_until(lambda: fake.versions(asked.original_id)[-1] == ANSWER + SOURCES)
    shown_versions = fake.versions(asked.original_id)
    web, x = (
        shown_versions.index("🔎 Searching the web"),
        shown_versions.index("🔎 Searching X for “grok 4.7”"),
    )
    first_words = next(i for i, version in enumerate(shown_versions) if version.startswith("Grok"))
    assert web < x < first_words
    await stack.idle()
    assert stack.xai.responses_requests()[-1].json["tools"][1]["type"] == "x_search"


async def test_a_citation_on_the_2000_character_split_stays_one_link(
    stack_factory: Callable[..., Any],
) -> None:
    stack: Stack = await stack_factory(grokbot_xai_api="responses")
    fake, world = stack.fake, stack.world
    text = "word " * 394 + ANSWER  # the first marker spans characters 1,987 to 2,011
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
    for marker in ("[[1]](https://x.ai/news)", "[[2]](https://x.com/xai/status/1)"):
        assert sum(marker in m["content"] for m in messages) == 1
    for message in messages:
        for version in fake.versions(message["id"]):
            body = version.removesuffix(WHILE_STREAMING)
            assert settled(body) == len(body) and len(version) <= 2000  # never half a link, not mid-stream


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
