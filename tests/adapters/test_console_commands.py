"""Commands typed in the console: a line starting with a slash is a command, so a mistyped or unknown
one is answered with the list of commands and asks nothing of Grok; `/help <command>`; quoting."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bot.grok import GrokClient
from tests.adapters.test_console import converse
from tests.bot.engine_env import build
from tests.fakes.xai import FakeXAI


async def console(fake_xai: FakeXAI, grok: GrokClient, sessions: Any, lines: str, tmp_path: Path) -> str:
    return await converse(build(fake_xai, grok, sessions), lines, tmp_path)


async def test_unknown_and_mistyped_commands_list_the_commands_and_ask_nothing(
    fake_xai: FakeXAI, grok: GrokClient, sessions: Any, tmp_path: Path
) -> None:
    output = await console(fake_xai, grok, sessions, "/usgae\n/foo what is this\n", tmp_path)
    assert "`usgae` is not a command. Did you mean `usage`?" in output
    assert "`foo` is not a command. The commands: `ask`, `imagine`" in output
    assert not fake_xai.requests


async def test_plain_text_still_asks_even_when_it_looks_like_a_command(
    fake_xai: FakeXAI, grok: GrokClient, sessions: Any, tmp_path: Path
) -> None:
    output = await console(fake_xai, grok, sessions, "usgae\n", tmp_path)
    assert "not a command" not in output
    assert fake_xai.chat_requests()[-1].json["messages"][-1]["content"].endswith("usgae")


async def test_help_with_a_command_and_quoted_values(
    fake_xai: FakeXAI, grok: GrokClient, sessions: Any, tmp_path: Path
) -> None:
    output = await console(
        fake_xai, grok, sessions, '/help imagine\n/quota user:"me" daily_usd:"3"\n', tmp_path
    )
    assert "grok> **imagine** — generates images.\nUsage: `imagine [count:1-4] <prompt>`\n" in output
    assert "• `count:1-4`: how many" in output
    assert "grok> User `me` now has limits: $3.00 a day" in output  # the console's user is an admin
    assert not fake_xai.requests
