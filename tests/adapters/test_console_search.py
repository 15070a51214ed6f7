"""Search-backed answers in the console: what is being searched, the answer, then its sources as a
numbered list; the reasoning summary of the Responses API after the answer."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from sqlmodel import select

from bot.grok import GrokClient
from bot.tables import Turn
from tests.adapters.test_console import converse
from tests.bot.engine_env import build
from tests.fakes.xai import FakeXAI, ScriptedCitation, ScriptedResponse, ScriptedTool

ANSWER = "Grok 4.7 is out [[1]](https://x.ai/news); X agrees [[2]](https://x.com/xai/status/1)."


async def test_a_searched_answer_shows_the_searches_the_answer_and_its_numbered_sources(
    fake_xai: FakeXAI, grok: GrokClient, sessions: Any, tmp_path: Path
) -> None:
    env = build(fake_xai, grok, sessions, grokbot_xai_api="responses")
    fake_xai.queue_response(
        ScriptedResponse(
            text=ANSWER,
            tools=(
                ScriptedTool("web", "grok 4.7", sources=("https://x.ai/news",)),
                ScriptedTool("x", "grok 4.7"),
            ),
            citations=(
                ScriptedCitation("https://x.ai/news", title="xAI news", marker=True),
                ScriptedCitation("https://x.com/xai/status/1", marker=True),
            ),
        )
    )
    output = await converse(env, "what is new?\n", tmp_path)
    steps = [
        "[🔎 Searching the web]",
        "[🔎 Searching X for “grok 4.7”]",
        f"grok> {ANSWER}\n",
        "      Sources\n",
        "      1. xAI news — https://x.ai/news\n",
        "      2. @xai on X — https://x.com/xai/status/1\n",
    ]
    at = [output.index(step) for step in steps]
    assert at == sorted(at)
    assert "**Sources**" not in output  # the console lists them itself


async def test_the_reasoning_summary_streams_then_is_shown_whole_and_never_stored_encrypted(
    fake_xai: FakeXAI, grok: GrokClient, sessions: Any, tmp_path: Path
) -> None:
    env = build(fake_xai, grok, sessions, grokbot_xai_api="responses")
    summary = "First I weigh the question. Then I answer it."
    fake_xai.queue_response(ScriptedResponse(text="Done.", reasoning=summary))
    output = await converse(env, "/ask reasoning:low think please\n", tmp_path)
    assert "[💭 Thinking…]" in output and "_Thought for" in output
    after = output[output.index("Done.") :]
    assert "💭 Reasoning" in after and summary in " ".join(after.split())
    assert fake_xai.responses_requests()[-1].json["reasoning"] == {"effort": "low"}
    encrypted = base64.b64encode(summary.encode()[::-1]).decode()  # what the fake sends as encrypted_content
    async with env.engine.sessions() as session:
        kept = " ".join(
            str(value) for turn in (await session.exec(select(Turn))).all() for value in vars(turn).values()
        )
    assert encrypted not in kept and "Done." in kept
