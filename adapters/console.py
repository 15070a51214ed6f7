"""The terminal platform: `grokbot console` chats with the same engine and commands, no credentials
needed but the xAI key. Plain text asks; `/name opt:value text` runs a command; images are saved.
"""

from __future__ import annotations

import asyncio
import getpass
import itertools
import uuid
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from bot.engine import Engine
from bot.errors import BadInput
from bot.platform import (
    Attachment,
    Author,
    Capabilities,
    ChannelMessage,
    Command,
    Image,
    Incoming,
    Place,
    parse_command_text,
)

CAPABILITIES = Capabilities(
    max_message_length=100_000,  # a terminal has no message size; keep one answer in one piece
    edit_interval=0.03,  # writing to a terminal is cheap: show tokens almost as they come
    native_streaming=True,
    max_upload_bytes=64 * 1024 * 1024,
    scope_edits_per_minute=100_000,
    scope_burst=1000,
    private_files=True,  # the terminal is one person's
)
PLACE = Place("console", "local", "terminal", "main")
QUIT = {"/quit", "/exit", "quit", "exit"}


class ConsoleReply:
    def __init__(self, platform: ConsolePlatform, message_id: str) -> None:
        self._platform = platform
        self._id = message_id
        self._shown = ""
        self._status = False
        self._started = False

    @property
    def message_id(self) -> str:
        return self._id

    def _clear_status(self) -> None:
        if self._status:
            self._platform.write("\r\033[K" if self._platform.tty else "")
            self._status = False

    async def status(self, text: str) -> None:
        line = text.replace("\n", " ")
        if self._platform.tty:
            self._platform.write(f"\r\033[K\033[2m{line}\033[0m")
            self._status = True
        else:
            self._platform.write(f"[{line}]\n")

    def _show(self, text: str, end: str = "") -> None:
        self._clear_status()
        prefix = "" if self._started else "grok> "
        self._started = True
        self._platform.write(prefix + text[len(self._shown) :] + end)
        self._shown = text

    async def update(self, text: str) -> None:
        self._show(text)

    async def finish(self, text: str, *, images: Sequence[Image] = ()) -> None:
        self._show(text, "\n")
        self._platform.save_images(images)

    async def fail(self, message: str) -> None:
        self._clear_status()
        self._platform.write(("\n" if self._shown else "") + f"⚠️  {message}\n")


class ConsolePlatform:
    """Writes answers to a text stream as they stream in; keeps what was said for `digest now`."""

    def __init__(self, out: TextIO, *, image_dir: Path, tty: bool | None = None) -> None:
        self._out = out
        self.image_dir = image_dir
        self.tty = out.isatty() if tty is None else tty
        self._ids = itertools.count(1)
        self.log: list[ChannelMessage] = []

    @property
    def name(self) -> str:
        return "console"

    @property
    def capabilities(self) -> Capabilities:
        return CAPABILITIES

    def rate_scope(self, place: Place) -> str:
        return "local"

    def write(self, text: str) -> None:
        self._out.write(text)
        self._out.flush()

    async def start_reply(self, place: Place, *, reply_to: str = "") -> ConsoleReply:
        return ConsoleReply(self, f"c{next(self._ids)}")

    async def post_text(self, place: Place, text: str, *, private_to: str = "") -> str:
        self.write(f"grok> {text}\n")
        return f"c{next(self._ids)}"

    async def post_images(self, place: Place, images: Sequence[Image], *, text: str = "") -> str:
        if text:
            self.write(f"grok> {text}\n")
        self.save_images(images)
        return f"c{next(self._ids)}"

    async def direct_message(self, user_id: str, text: str) -> str:
        """The terminal is the one person's conversation: a direct message is a line like any other."""
        self.write(f"grok (to you alone)> {text}\n")
        return f"c{next(self._ids)}"

    def save_images(self, images: Sequence[Image]) -> list[Path]:
        if not images:
            return []
        self.image_dir.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        paths = []
        for image in images:
            path = self.image_dir / f"{stamp}-{image.filename}"
            path.write_bytes(image.data)
            paths.append(path)
            self.write(f"      saved {path}\n")
        return paths

    async def download(self, attachment: Attachment) -> bytes:
        if attachment.data is not None:
            return attachment.data
        path = Path(attachment.url)
        try:
            return await asyncio.to_thread(path.read_bytes)
        except OSError:
            raise BadInput(f"No file at `{path}`: `image:` takes the path of a JPEG or PNG file.") from None

    async def channel_history(
        self, place: Place, *, since: datetime, until: datetime, limit: int = 2000
    ) -> Sequence[ChannelMessage]:
        return [m for m in self.log if since <= m.sent_at < until][:limit]


def to_incoming(line: str, *, author: Author, number: int, session: str = "") -> Incoming:
    """A typed line → Incoming. `/cmd ...` is a command; `image:<path>` on ask attaches a file (read,
    and refused when missing, by the engine like any attachment).

    Ids carry the session, so that two console sessions never share a charge's idempotency key."""
    text = line.strip()
    message_id = f"{session}u{number}"
    if not text.startswith("/"):
        return Incoming(place=PLACE, author=author, text=text, message_id=message_id, event_id=message_id)
    command = parse_command_text(text[1:])
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
    """The console's read-answer loop on an existing platform (registered for deferred answers)."""
    author = Author(id=getpass.getuser(), name=getpass.getuser(), is_admin=True)
    session = f"{uuid.uuid4().hex[:8]}-"
    platform.write(
        "grokbot console — type a question, or /help for commands (/imagine, /usage, /reset ...). "
        "Ctrl-D or /quit to leave.\n"
    )
    for number in itertools.count(1):
        if platform.tty:
            platform.write("you> ")
        line = await asyncio.to_thread(lines.readline)
        if not line:
            break
        text = line.strip()
        if not text:
            continue
        if text in QUIT:
            break
        platform.log.append(ChannelMessage(f"{session}u{number}", author, text, datetime.now(UTC)))
        await engine.handle(to_incoming(text, author=author, number=number, session=session), platform)
    platform.write("bye\n")
