"""`grokbot console` at a terminal, driven through a pseudo-terminal as a person would: line editing
and history, a 100,000-character paste, Markdown, Ctrl-C mid-answer (charged for what was written),
a deferred answer followed by a fresh prompt, and Ctrl-C or Ctrl-D leaving."""

from __future__ import annotations

import asyncio
import os
import re
import sqlite3
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pexpect
import pytest
import pytest_asyncio

from bot.conversation import estimate_tokens
from tests.fakes.xai import FakeXAI, ScriptedReply

PROMPT = "you> "
ESC = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


class Console:
    """A `grokbot console` process on a pseudo-terminal; pexpect's blocking reads run in a thread,
    so that the fake xAI in this test's event loop keeps serving."""

    def __init__(self, child: pexpect.spawn, home: Path) -> None:
        self.child = child
        self.home = home
        self.seen = ""  # everything the terminal showed so far

    async def expect(self, pattern: str, *, seconds: float = 30) -> str:
        await asyncio.to_thread(self.child.expect_exact, pattern, timeout=seconds)
        shown = str(self.child.before) + str(self.child.after)
        self.seen += shown
        return shown

    async def send(self, text: str) -> None:
        await asyncio.to_thread(self.child.send, text)

    async def leave(self) -> int:
        await asyncio.to_thread(self.child.expect, pexpect.EOF, timeout=30)
        self.seen += str(self.child.before)
        await asyncio.to_thread(self.child.close)
        return int(self.child.exitstatus if self.child.exitstatus is not None else -1)


@pytest_asyncio.fixture
async def console(fake_xai: FakeXAI, tmp_path: Path) -> AsyncIterator[Console]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DISCORD_", "SLACK_", "XAI_"))},
        "XAI_API_KEY": fake_xai.api_key,
        "XAI_BASE_URL": fake_xai.base_url,
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'console.db'}",
        "GROKBOT_XAI_API": "chat",  # these script Chat Completions; search answers: test_console_search
        "HOME": str(tmp_path),
        "TERM": "xterm",
    }
    child = await asyncio.to_thread(
        pexpect.spawn,
        sys.executable,
        ["-m", "bot", "console"],
        cwd=str(tmp_path),
        env=env,
        encoding="utf-8",
        dimensions=(24, 80),
        timeout=30,
    )
    terminal = Console(child, tmp_path)
    try:
        await terminal.expect(PROMPT)
        yield terminal
    finally:
        if child.isalive():
            child.terminate(force=True)


def ledger(tmp_path: Path) -> list[tuple[int, int]]:
    with sqlite3.connect(tmp_path / "console.db") as db:
        return list(db.execute("SELECT completion_tokens, cost_ticks FROM usage_event WHERE kind = 'chat'"))


def asked(fake_xai: FakeXAI) -> str:
    content = fake_xai.chat_requests()[-1].json["messages"][-1]["content"]
    return content if isinstance(content, str) else str(content)


async def test_lines_can_be_edited_and_recalled(console: Console, fake_xai: FakeXAI) -> None:
    await console.send("hello wrld")
    await console.send("\x1b[D\x1b[D\x1b[Do\r")  # three times left, insert the missing letter
    await console.expect("Echo:")
    await console.expect(PROMPT)
    assert asked(fake_xai).endswith("hello world")
    await console.send("\x1b[A\r")  # up: the line before, sent again
    await console.expect("Echo:")
    await console.expect(PROMPT)
    assert len(fake_xai.chat_requests()) == 2 and asked(fake_xai).endswith("hello world")
    await console.send("\x04")
    assert await console.leave() == 0
    history = console.home / ".local" / "state" / "grokbot" / "history"
    assert "hello world" in history.read_text()


async def test_a_paste_of_100000_characters_arrives_whole(console: Console, fake_xai: FakeXAI) -> None:
    fake_xai.queue_reply(ScriptedReply(text="Got all of it."))
    pasted = "".join(f"{i % 10}" for i in range(100_000))
    # What a terminal sends for a paste once the program asked for bracketed paste.
    await console.send(f"\x1b[200~{pasted}\x1b[201~")
    await console.send("\r")
    await console.expect("Got all of it.", seconds=60)
    await console.expect(PROMPT)
    assert asked(fake_xai).endswith(pasted)  # not cut at the terminal's 4,095-character line limit
    await console.send("\x04")
    assert await console.leave() == 0


async def test_answers_are_rendered_markdown(console: Console, fake_xai: FakeXAI) -> None:
    fake_xai.queue_reply(
        ScriptedReply(text="Some **bold** and `code`.\n\n- one\n- two\n\nSee [xAI](https://x.ai).")
    )
    await console.send("format something\r")
    shown = await console.expect(PROMPT)
    assert "\x1b[1mbold\x1b[0m" in shown and "**" not in shown and "`" not in shown
    plain = ESC.sub("", shown)
    assert "• one" in plain and "• two" in plain
    assert "xAI (https://x.ai)" in plain
    await console.send("\x04")
    assert await console.leave() == 0


async def test_ctrl_c_stops_the_answer_charges_what_was_written_and_prompts_again(
    console: Console, fake_xai: FakeXAI, tmp_path: Path
) -> None:
    answer = "word " * 400
    fake_xai.queue_reply(ScriptedReply(text=answer, chunk_chars=5, tokens_per_second=20))
    fake_xai.send_log = {}  # each write of the stream
    await console.send("talk for a while\r")
    await console.expect("word word word")
    await asyncio.to_thread(console.child.sendintr)
    await console.expect("Stopped.")
    await console.expect(PROMPT, seconds=10)  # long before the 20 s the whole answer takes
    await console.send("\x04")
    assert await console.leave() == 0
    assert "Traceback" not in console.seen
    ((completion_tokens, cost_ticks),) = ledger(tmp_path)
    assert 0 < completion_tokens < estimate_tokens(answer)
    assert cost_ticks > 0
    writes = sum(len(sent) for sent in fake_xai.send_log.values())
    assert 0 < writes < 200  # of 400: the engine stopped reading long before the stream's end
    with sqlite3.connect(tmp_path / "console.db") as db:
        finishes = [row[0] for row in db.execute("SELECT finish_reason FROM turn WHERE role = 'assistant'")]
    assert finishes == ["stopped"]


async def test_a_deferred_answer_is_followed_by_a_fresh_prompt(console: Console, fake_xai: FakeXAI) -> None:
    fake_xai.queue_reply(ScriptedReply(text="The deferred answer.", deferred_pending_polls=1))
    await console.send("/ask defer:true take your time\r")
    await console.expect("deferred request")
    await console.expect(PROMPT)
    await console.expect("The deferred answer.")
    await console.expect(PROMPT)  # drawn again below it, so typing goes on at a prompt
    await console.send("\x04")
    assert await console.leave() == 0


@pytest.mark.parametrize("key", ["\x03", "\x04"], ids=["ctrl-c", "ctrl-d"])
async def test_ctrl_c_or_ctrl_d_at_an_empty_prompt_leaves(console: Console, key: str) -> None:
    await console.send(key)
    assert await console.leave() == 0
    assert "bye" in console.seen


async def test_ctrl_c_on_a_typed_line_gives_a_fresh_prompt(console: Console, fake_xai: FakeXAI) -> None:
    await console.send("never mind")
    await console.send("\x03")
    await console.expect(PROMPT)
    await console.send("\x04")
    assert await console.leave() == 0
    assert not fake_xai.chat_requests()
