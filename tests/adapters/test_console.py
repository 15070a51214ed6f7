"""The console: the same engine and commands in a terminal, driven through its input stream and
as a real `grokbot console` process reading stdin."""

from __future__ import annotations

import asyncio
import io
import os
import sys
from pathlib import Path
from typing import Any

from PIL import Image as PILImage

from adapters.console import ConsolePlatform
from adapters.console.session import run_console
from bot.grok import GrokClient
from bot.platform import Author
from tests.bot.engine_env import build
from tests.fakes.xai import FakeXAI, ScriptedReply, ScriptedResponse

ME = Author("me", "me", is_admin=True)


async def converse(env: Any, lines: str, tmp_path: Path) -> str:
    out = io.StringIO()
    await run_console(env.engine, lines=io.StringIO(lines), out=out, image_dir=tmp_path / "images")
    return out.getvalue()


async def test_plain_text_asks_and_streams_the_answer(
    fake_xai: FakeXAI, grok: GrokClient, sessions: Any, tmp_path: Path
) -> None:
    env = build(fake_xai, grok, sessions)
    fake_xai.queue_reply(ScriptedReply(text="Blue light scatters most.", chunk_chars=2))
    output = await converse(env, "why is the sky blue?\n/quit\n", tmp_path)
    assert "grok> Blue light scatters most.\n" in output
    assert output.rstrip().endswith("bye")


async def test_commands_work_in_the_console(
    fake_xai: FakeXAI, grok: GrokClient, sessions: Any, tmp_path: Path
) -> None:
    env = build(fake_xai, grok, sessions)
    output = await converse(env, "/help\nhello\n/usage\n/imagine count:2 a red fox\n/reset\n", tmp_path)
    assert "imagine" in output and "reasoning:low|high" in output  # help
    assert "Echo: [" in output  # the fake's default answer to "hello"
    assert "Today:" in output  # usage
    saved = sorted((tmp_path / "images").glob("*-grok-[0-9].png"))  # imagine's two
    assert len(saved) == 2 and all(str(path) in output for path in saved)
    (usage,) = (tmp_path / "images").glob("*-grok-usage-30-days.png")  # usage's picture
    assert str(usage) in output
    assert "Forgot this conversation" in output


async def test_reasoning_is_shown_in_the_console(
    fake_xai: FakeXAI, grok: GrokClient, sessions: Any, tmp_path: Path
) -> None:
    env = build(fake_xai, grok, sessions)
    fake_xai.queue_reply(ScriptedReply(text="Done.", reasoning="thinking hard " * 10))
    output = await converse(env, "/ask reasoning:low think please\n", tmp_path)
    assert "[💭 Thinking…]" in output
    assert "_Thought for" in output and "Done." in output


async def test_image_paths_attach_files(
    fake_xai: FakeXAI, grok: GrokClient, sessions: Any, tmp_path: Path
) -> None:
    env = build(fake_xai, grok, sessions)
    picture = tmp_path / "cat.png"
    PILImage.new("RGB", (3, 3)).save(picture)
    await converse(env, f"/ask image:{picture} what is this?\n", tmp_path)
    content = fake_xai.chat_requests()[-1].json["messages"][-1]["content"]
    assert content[1]["image_url"]["url"].startswith("data:image/png;base64,")


async def test_a_missing_image_file_says_what_image_takes(
    fake_xai: FakeXAI, grok: GrokClient, sessions: Any, tmp_path: Path
) -> None:
    env = build(fake_xai, grok, sessions)
    output = await converse(
        env, f"/ask image:{tmp_path / 'nope.png'} hi\n/imagine count:1 count:2 fox\n", tmp_path
    )
    assert "No file at" in output and "JPEG or PNG" in output  # told by the engine, and nothing asked
    assert "given twice" in output
    assert not fake_xai.chat_requests()


def test_tty_status_is_overwritten_in_place() -> None:
    out = io.StringIO()
    platform = ConsolePlatform(out, image_dir=Path("."), tty=True)

    async def go() -> None:
        reply = await platform.start_reply(platform_place())
        await reply.status("💭 Thinking… 2 s")
        await reply.update("Hello")
        await reply.finish("Hello there")

    asyncio.run(go())
    assert out.getvalue() == "\r\x1b[K\x1b[2m💭 Thinking… 2 s\x1b[0m\r\x1b[Kgrok> Hello there\n"


def platform_place() -> Any:
    from adapters.console.platform import PLACE

    return PLACE


async def test_the_grokbot_console_process_answers_on_stdin(fake_xai: FakeXAI, tmp_path: Path) -> None:
    fake_xai.queue_response(ScriptedResponse(text="Hello from the fake Grok."))
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DISCORD_", "SLACK_"))},
        "XAI_API_KEY": fake_xai.api_key,
        "XAI_BASE_URL": fake_xai.base_url,
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'console.db'}",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "console",
        cwd=tmp_path, env=env,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    stdout, stderr = await asyncio.wait_for(process.communicate(b"hi there\n/usage\n"), timeout=60)
    output = stdout.decode()
    assert process.returncode == 0, stderr.decode()
    assert "grok> Hello from the fake Grok." in output
    assert "Today:" in output
    assert fake_xai.api_key not in output + stderr.decode()


async def test_each_console_session_charges_its_own_answers(
    fake_xai: FakeXAI, grok: GrokClient, sessions: Any, tmp_path: Path
) -> None:
    from sqlalchemy import func, select

    from bot.tables import UsageEvent

    env = build(fake_xai, grok, sessions)
    await converse(env, "first session question\n", tmp_path)
    await converse(env, "second session question\n", tmp_path)
    async with env.engine.sessions() as session:
        (charged,) = (await session.exec(select(func.count()).select_from(UsageEvent))).one()
    assert charged == 2


def narrow_terminal(columns: int) -> tuple[int, Any]:
    """A pseudo-terminal `columns` wide: its reading end, and its terminal end as a text stream."""
    import fcntl
    import struct
    import termios

    reader, terminal = os.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    return reader, os.fdopen(terminal, "w", encoding="utf-8")


def test_a_status_longer_than_the_terminal_is_cut_to_one_row() -> None:
    from rich.cells import cell_len

    from adapters.console import Screen

    reader, out = narrow_terminal(30)
    with out:
        screen = Screen(out)
        screen.status("💭 Thinking… 12 s\n> the model weighs several long considerations")
        shown = os.read(reader, 4096).decode()
    os.close(reader)
    text = shown.removeprefix("\r\x1b[K\x1b[2m").removesuffix("\x1b[0m")
    # A row that wraps could not be cleared by "\r\x1b[K", which clears only the last row.
    assert 0 < cell_len(text) <= 29 and text.endswith("…")
    assert text.startswith("💭 Thinking… 12 s > the")


def test_a_warning_clears_the_status_row_and_shows_it_again() -> None:
    import logging

    from adapters.console import Screen, ScreenLog

    out = io.StringIO()
    screen = Screen(out, tty=True)
    handler = ScreenLog(screen)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    screen.status("💭 Thinking… 2 s")
    handler.emit(logging.LogRecord("x", logging.WARNING, __file__, 1, "prices unreachable", None, None))
    status = "\r\x1b[K\x1b[2m💭 Thinking… 2 s\x1b[0m"
    assert out.getvalue() == status + "\r\x1b[K" + "WARNING prices unreachable\n" + status


async def test_the_reasoning_is_shown_whole_after_the_answer(
    fake_xai: FakeXAI, grok: GrokClient, sessions: Any, tmp_path: Path
) -> None:
    env = build(fake_xai, grok, sessions)
    reasoning = "".join(f"step {i}: weigh it. " for i in range(200))
    fake_xai.queue_reply(ScriptedReply(text="Done.", reasoning=reasoning))
    output = await converse(env, "/ask reasoning:low think please\n", tmp_path)
    after = output[output.index("Done.") :]
    assert "💭 Reasoning" in after
    assert " ".join(after.split()).count("weigh it.") == 200  # whole, not the status line's tail


async def test_on_a_terminal_the_reasoning_is_dimmed_and_the_answer_rendered(
    fake_xai: FakeXAI, grok: GrokClient, sessions: Any, tmp_path: Path
) -> None:
    from adapters.console import ConsolePlatform, chat

    env = build(fake_xai, grok, sessions)
    fake_xai.queue_reply(ScriptedReply(text="A **bold** claim.", reasoning="first this, then that"))
    out = io.StringIO()
    platform = ConsolePlatform(out, image_dir=tmp_path, tty=True, markdown=True)
    lines = iter(["/ask reasoning:low go", None])

    async def read() -> str | None:
        return next(lines)

    await chat(env.engine, platform, read)
    shown = out.getvalue()
    assert "grok> \x1b[3mThought for" in shown  # the first block, in italics, under the label
    assert "\n      A \x1b[1mbold\x1b[0m claim.\n" in shown and "**" not in shown
    assert "\x1b[2m      💭 Reasoning\n      first this, then that\x1b[0m" in shown


def test_the_console_help_names_every_command_and_option() -> None:
    from adapters.console.session import HELP_TEXT, console_help
    from bot.command_registry import REGISTRY, CommandSpec, OptionSpec

    for spec in REGISTRY:
        assert f"/{spec.name}" in HELP_TEXT
        # `channel:` names a channel to summarise, and the console has one.
        assert all(f"{o.name}:" in HELP_TEXT for o in spec.all_options if o.name != "channel")
    assert "image:<path>" in HELP_TEXT and "mention" not in HELP_TEXT.lower()
    added = CommandSpec("translate", "translates", text="<text>", options=(OptionSpec("to", "<lang>"),))
    derived = console_help((*REGISTRY, added))  # derived from the registry, not written by hand
    assert "/translate <text>" in derived and "to:<lang>" in derived


def test_an_answer_is_rendered_block_by_block_never_inside_a_code_block() -> None:
    from adapters.console.markdown import finished_blocks

    text = "Intro **b**.\n\n```python\nx = 1\n\ny = 2\n"
    assert text[: finished_blocks(text)] == "Intro **b**.\n\n"  # the open code block waits
    closed = text + "```\nmore"
    assert closed[: finished_blocks(closed)] == text + "```\n"
    assert finished_blocks("# Title\nbody") == len("# Title\n")


class StatusWatch(io.StringIO):
    """A terminal stand-in that tells when a status containing `word` was written."""

    def __init__(self, word: str) -> None:
        super().__init__()
        self.word = word
        self.seen = asyncio.Event()

    def write(self, text: str) -> int:
        if self.word in text:
            self.seen.set()
        return super().write(text)


async def test_ctrl_c_while_the_model_thinks_stops_the_stream_and_charges_the_reasoning(
    fake_xai: FakeXAI, grok: GrokClient, sessions: Any, tmp_path: Path
) -> None:
    from sqlmodel import select

    from adapters.console import ConsolePlatform, chat
    from bot.tables import UsageEvent

    env = build(fake_xai, grok, sessions)
    # 25 s of reasoning before any answer text: only a stop taken at a status ends it sooner.
    fake_xai.queue_reply(ScriptedReply(text="Never shown.", reasoning="hmm " * 500, tokens_per_second=20))
    fake_xai.send_log = {}  # each write of the stream
    out = StatusWatch("Thinking")
    platform = ConsolePlatform(out, image_dir=tmp_path, tty=True)
    lines: asyncio.Queue[str | None] = asyncio.Queue()
    session = asyncio.create_task(chat(env.engine, platform, lines.get))
    await lines.put("/ask reasoning:low think hard")
    await out.seen.wait()
    assert platform.interrupt()  # what the terminal's Ctrl-C does
    await lines.put(None)
    await asyncio.wait_for(session, timeout=15)
    writes = sum(len(sent) for sent in fake_xai.send_log.values())
    assert 0 < writes < 250  # of 500: the engine stopped reading long before the stream's end
    async with env.engine.sessions() as db:
        (charge,) = (await db.exec(select(UsageEvent))).all()
    assert charge.reasoning_tokens > 0 and charge.cost_ticks > 0
    assert "Stopped." in out.getvalue() and "Never shown." not in out.getvalue()


def test_history_that_cannot_be_read_or_written_is_quietly_skipped(tmp_path: Path) -> None:
    from adapters.console import Prompter, Screen

    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    prompter = Prompter(Screen(io.StringIO()), history=blocked / "history")  # nothing to read
    prompter.save()  # its folder cannot be made: no error, nothing written
    assert blocked.read_text() == "not a folder"
