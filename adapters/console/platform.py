"""The terminal platform: answers are written to a Screen as they stream in, rendered as Markdown
on a terminal that asks for it and plain elsewhere, their sources as a numbered list of titles and
URLs; images are saved to files; Ctrl-C stops the answer being written (AnswerStopped, as Slack's
stop button does).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from adapters.console.markdown import Renderer, finished_blocks
from adapters.console.screen import DIM, RESET, Screen
from bot.errors import AnswerStopped, BadInput
from bot.platform import Attachment, Capabilities, ChannelMessage, Image, OpenMessage, Place, SourceLink
from bot.streaming import short_url

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
LABEL = "grok> "
MARGIN = " " * len(LABEL)


class ConsoleReply:
    """One answer on the screen. Plain: the text as it grows. Rendered: each finished Markdown block
    once it is whole, with the line being written shown in the status row meanwhile."""

    def __init__(self, platform: ConsolePlatform, message_id: str) -> None:
        self._platform = platform
        self._screen = platform.screen
        self._id = message_id
        self._text = ""  # everything received
        self._printed = 0  # characters of `_text` on the screen for good
        self._sources: tuple[SourceLink, ...] = ()
        self.stopped = False

    @property
    def message_id(self) -> str:
        return self._id

    def _check(self) -> None:
        if self.stopped:
            raise AnswerStopped("the answer was stopped with Ctrl-C")

    async def status(self, text: str) -> None:
        self._check()
        self._screen.status(text)

    async def update(self, text: str) -> None:
        self._check()
        self._text = text
        if self._platform.renderer is None:
            self._print(text)
            return
        self._print(text[: self._printed + finished_blocks(text[self._printed :])])
        tail = text[self._printed :].rstrip("\n").rsplit("\n", 1)[-1]
        if tail.strip():
            self._screen.status(f"✍️  {tail.strip()}")

    async def sources(self, sources: Sequence[SourceLink]) -> None:
        """Shown after the answer, numbered: each title (or a short form of its URL) and URL."""
        self._sources = tuple(sources)

    async def finish(self, text: str, *, images: Sequence[Image] = ()) -> None:
        self._check()
        self._text = text
        self._print(text, end="\n")
        if self._sources:
            listed = (
                f"{MARGIN}{n}. {s.title or short_url(s.url)} — {s.url}\n"
                for n, s in enumerate(self._sources, 1)
            )
            self._screen.write(f"{MARGIN}Sources\n" + "".join(listed))
        self._platform.save_images(images)

    async def fail(self, message: str) -> None:
        self._print(self._text)
        self._screen.write(("\n" if self._text else "") + f"⚠️  {message}\n")

    def stop(self) -> None:
        """Ctrl-C: keep what arrived so far on the screen, and refuse every later call."""
        if not self.stopped:
            self.stopped = True
            self._print(self._text)
            self._screen.write(("\n" if self._text else "") + "⏹  Stopped.\n")

    def _print(self, upto: str, end: str = "") -> None:
        """Put `upto[self._printed:]` on the screen for good (rendered when the platform renders)."""
        new = upto[self._printed :]
        if not new and not end:
            return
        first = self._printed == 0
        if self._platform.renderer is None:
            self._screen.write((LABEL if first else "") + new + end)
        elif new.strip():
            self._screen.write(self._platform.rendered(new, first=first))
        elif end:
            self._screen.clear_status()
        self._printed = len(upto)


class ConsolePlatform:
    """Writes answers to a Screen as they stream in; keeps what was said for `digest now`."""

    def __init__(
        self, out: TextIO | Screen, *, image_dir: Path, tty: bool | None = None, markdown: bool = False
    ) -> None:
        self.screen = out if isinstance(out, Screen) else Screen(out, tty=tty)
        self.image_dir = image_dir
        self.renderer = Renderer(indent=len(LABEL)) if markdown and self.screen.tty else None
        self._ids = itertools.count(1)
        self._current: ConsoleReply | None = None
        self._stop = asyncio.Event()  # set by Ctrl-C during an answer
        self.log: list[ChannelMessage] = []

    @property
    def tty(self) -> bool:
        return self.screen.tty

    @property
    def name(self) -> str:
        return "console"

    @property
    def capabilities(self) -> Capabilities:
        return CAPABILITIES

    def rate_scope(self, place: Place) -> str:
        return "local"

    def write(self, text: str) -> None:
        self.screen.write(text)

    def rendered(self, markdown: str, *, first: bool) -> str:
        """`markdown` as terminal rows: under the label when `first`, else after a blank row."""
        assert self.renderer is not None
        rows = self.renderer.render(markdown, width=self.screen.width)
        lines = [(LABEL if first and i == 0 else MARGIN if row else "") + row for i, row in enumerate(rows)]
        return ("" if first else "\n") + "\n".join(lines) + "\n"

    def interrupt(self) -> bool:
        """Ctrl-C during an answer: stop the reply being written; False when there is none."""
        reply, self._current = self._current, None
        if reply is None or reply.stopped:
            return False
        reply.stop()
        self._stop.set()
        return True

    async def answered(self, answer: asyncio.Task[bool]) -> bool:
        """Wait for `answer` to end; False as soon as it is stopped with Ctrl-C instead."""
        self._stop.clear()
        stop = asyncio.ensure_future(self._stop.wait())
        try:
            await asyncio.wait({answer, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
        if answer.done():
            answer.result()  # the engine's own errors are raised here, as when awaited
            return True
        return False

    async def close_orphan(self, message: OpenMessage, note: str) -> None:
        """An answer of an earlier session that stopped mid-way: its terminal is gone, so this one
        says so once."""
        self.screen.write(f"⚠️  An answer of an earlier session was cut off. {note}\n")

    async def start_reply(self, place: Place, *, reply_to: str = "") -> ConsoleReply:
        self._current = ConsoleReply(self, f"c{next(self._ids)}")
        return self._current

    async def post_text(self, place: Place, text: str, *, private_to: str = "") -> str:
        self.screen.write(self.rendered(text, first=True) if self.renderer else f"{LABEL}{text}\n")
        return f"c{next(self._ids)}"

    async def direct_message(self, user_id: str, text: str) -> str:
        """The terminal is the one person's conversation: a direct message is a line like any other."""
        self.screen.write(f"grok (to you alone)> {text}\n")
        return f"c{next(self._ids)}"

    async def post_images(self, place: Place, images: Sequence[Image], *, text: str = "") -> str:
        if text:
            await self.post_text(place, text)
        self.save_images(images)
        return f"c{next(self._ids)}"

    async def show_reasoning(self, place: Place, text: str) -> None:
        """The whole reasoning after its answer, dimmed (on a terminal), below a heading."""
        body = "\n".join(MARGIN + line for line in text.strip().splitlines())
        if self.screen.tty:
            self.screen.write(f"{DIM}{MARGIN}💭 Reasoning\n{body}{RESET}\n")
        else:
            self.screen.write(f"{MARGIN}💭 Reasoning\n{body}\n")

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
            self.screen.write(f"{MARGIN}saved {path}\n")
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
