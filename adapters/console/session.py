"""The console's conversation: typed lines become Incoming values for the engine, one at a time,
until EOF or /quit; `/help` is answered here, in the console's own words.
"""

from __future__ import annotations

import asyncio
import getpass
import itertools
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from adapters.console.platform import PLACE, ConsolePlatform
from bot.command_registry import REGISTRY, CommandSpec, OptionSpec
from bot.engine import Engine
from bot.parsing import parse_command_text
from bot.platform import Attachment, Author, ChannelMessage, Command, Incoming

QUIT = {"/quit", "/exit", "quit", "exit"}
HELP = {"/help", "help"}

# A line of text, or None at the end of the input.
LineReader = Callable[[], Awaitable[str | None]]

WELCOME = (
    "grokbot console — type a question, or /help for the commands. "
    "Ctrl-C stops an answer; Ctrl-D or /quit leaves.\n"
)

# The console has one channel (`channel:` has nothing to name) and no attachments: `image:` takes a path.
_NOT_HERE = {"channel"}
_IMAGE = OptionSpec("image", "<path>", "sends a JPEG or PNG file with the question, e.g. image:~/photo.png")


def console_help(registry: Sequence[CommandSpec] = REGISTRY) -> str:
    """The commands in the console's words, from the registry every platform's help reads."""
    lines = [
        "Type a question and press Enter: plain text asks; the conversation goes on until /reset.",
        "Commands start with a slash; their options come first, written name:value, then the text.",
    ]
    for spec in registry:
        forms = ("/" + form.replace(" [channel:<channel>]", "") for form in spec.forms())
        lines.append(f"  {'  ·  '.join(forms)}    {spec.about}")
        extra = (_IMAGE,) if spec.name == "ask" else ()
        for option in (*spec.options, *extra):
            if not option.required and option.name not in _NOT_HERE:
                lines.append(f"        {option.written:<22}{option.about}")
        if spec.note and spec.name != "ask":  # ask's note is about attachments: image: says it here
            lines.append(f"        {spec.note.replace('`', '')}")
    lines.append("Ctrl-C stops the answer being written (you pay for what was written); Ctrl-C at an")
    lines.append("empty prompt, Ctrl-D or /quit leaves. Up and down recall earlier lines.")
    return "\n".join(lines) + "\n"


HELP_TEXT = console_help()


def to_incoming(line: str, *, author: Author, number: int, session: str = "") -> Incoming:
    """A typed line → Incoming. `/cmd ...` is a command; `image:<path>` on ask attaches a file (read,
    and refused when missing, by the engine like any attachment).

    Ids carry the session, so that two console sessions never share a charge's idempotency key."""
    text = line.strip()
    message_id = f"{session}u{number}"
    if not text.startswith("/"):
        return Incoming(place=PLACE, author=author, text=text, message_id=message_id, event_id=message_id)
    command = parse_command_text(text)  # with its slash: `/usgae` is a mistyped command
    attachments: tuple[Attachment, ...] = ()
    if command.name == "ask" and "image" in command.options:
        options = dict(command.options)
        path = Path(options.pop("image")).expanduser()
        size = path.stat().st_size if path.is_file() else 0  # a missing file is told when read
        attachments = (Attachment(path.name, None, size, url=str(path)),)
        command = Command(name="ask", options=options, text=command.text)
    return replace(
        Incoming(place=PLACE, author=author, message_id=message_id, event_id=message_id),
        command=command,
        attachments=attachments,
    )


async def run_console(engine: Engine, *, lines: TextIO, out: TextIO, image_dir: Path) -> None:
    """Read lines until EOF or /quit, answering each through the engine."""
    await converse(engine, ConsolePlatform(out, image_dir=image_dir), lines=lines)


async def converse(engine: Engine, platform: ConsolePlatform, *, lines: TextIO) -> None:
    """The read-answer loop over a text stream (a pipe, a file)."""
    await chat(engine, platform, stream_reader(platform, lines))


def stream_reader(platform: ConsolePlatform, lines: TextIO) -> LineReader:
    """Lines from a text stream, read in a thread; on a terminal after a `you>` prompt."""

    async def read() -> str | None:
        if platform.tty:
            platform.write("you> ")
        return await asyncio.to_thread(lines.readline) or None

    return read


async def chat(engine: Engine, platform: ConsolePlatform, read: LineReader) -> None:
    """The console's read-answer loop on an existing platform (registered for deferred answers)."""
    author = Author(id=getpass.getuser(), name=getpass.getuser(), is_admin=True)
    session = f"{uuid.uuid4().hex[:8]}-"
    platform.write(WELCOME)
    stopped: set[asyncio.Task[bool]] = set()  # answers stopped with Ctrl-C, still being recorded
    for number in itertools.count(1):
        line = await read()
        if line is None:
            break
        text = line.strip()
        if not text:
            continue
        if text in QUIT:
            break
        if text.lower() in HELP:
            platform.write(HELP_TEXT)
            continue
        platform.log.append(ChannelMessage(f"{session}u{number}", author, text, datetime.now(UTC)))
        incoming = to_incoming(text, author=author, number=number, session=session)
        answer = asyncio.create_task(engine.handle(incoming, platform))
        if not await platform.answered(answer):
            stopped.add(answer)  # the engine stops at Grok's next event; the prompt need not wait
            answer.add_done_callback(stopped.discard)
    await asyncio.gather(*stopped)
    platform.write("bye\n")
