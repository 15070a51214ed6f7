"""What one Discord message of an answer carries: at most 2,000 characters, the in-progress marker,
images as files in batches under Discord's request limits, a failure's note; and `StreamedMessage`,
the message that is posted once and edited after.
"""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Sequence

import discord

from bot.errors import PlatformError
from bot.platform import Image
from bot.streaming import split_message

log = logging.getLogger(__name__)

MARKER = " ⚪"  # appended while an answer is still streaming (llmcord's convention)
MAX_CONTENT = 2000
MAX_UPLOAD = 10 * 1024 * 1024  # per file since 2025-01-16, without boosts
MAX_REQUEST = 24 * 1024 * 1024  # Discord caps a request at 25 MiB; keep room for the form
MAX_FILES = 10  # per message
# Room kept in each message for `<…>` around its links' URLs (two characters a link, 50 links).
LINK_ROOM = 100
REASONING_HEADING = "💭 **Reasoning** (tap to reveal)\n"

# A link's destination not yet in angle brackets: `](https://…)`, as the layout keeps links whole.
_BARE_URL = re.compile(r"\]\((?!<)(https?://[^()\s<>]*)\)")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")

NO_PINGS = discord.AllowedMentions(everyone=False, users=False, roles=False, replied_user=False)
PING_REPLIED = discord.AllowedMentions(everyone=False, users=False, roles=False, replied_user=True)


def image_files(images: Sequence[Image]) -> list[discord.File]:
    return [
        discord.File(
            io.BytesIO(image.data), filename=image.filename, description=image.caption[:1024] or None
        )
        for image in images
    ]


def upload_batches(images: Sequence[Image]) -> list[list[Image]]:
    """Images grouped so that no request passes Discord's 25 MiB or 10-file limits."""
    batches: list[list[Image]] = [[]]
    size = 0
    for image in images:
        if batches[-1] and (size + len(image.data) > MAX_REQUEST or len(batches[-1]) == MAX_FILES):
            batches.append([])
            size = 0
        batches[-1].append(image)
        size += len(image.data)
    return batches


def no_previews(content: str, *, limit: int = MAX_CONTENT) -> str:
    """`content` with its Markdown links' URLs in angle brackets, `[title](<url>)`, so Discord
    shows no link preview (embed) for them; links inside code blocks are left as written. Each
    link takes two characters more: links past `limit` are left as they are (LINK_ROOM keeps
    room for 50)."""
    if "](http" not in content:
        return content
    room = limit - len(content)
    out: list[str] = []
    fence = ""
    for line in content.split("\n"):
        opened = _FENCE.match(line)
        if opened and (not fence or opened.group(1).startswith(fence)):
            fence = "" if fence else opened.group(1)[:3]
        elif not fence and room >= 2:
            line, room = _bracketed(line, room)
        out.append(line)
    return "\n".join(out)


def _bracketed(line: str, room: int) -> tuple[str, int]:
    def bracket(match: re.Match[str]) -> str:
        nonlocal room
        if room < 2:
            return match.group(0)
        room -= 2
        return f"](<{match.group(1)}>)"

    return _BARE_URL.sub(bracket, line), room


def reasoning_messages(reasoning: str) -> list[str]:
    """The reasoning summary as spoiler-hidden messages under a heading (collapsed until tapped),
    each within Discord's 2,000 characters; `|` escaped so the summary cannot end the spoiler."""
    text = reasoning.strip().replace("|", "\\|")
    if not text:
        return []
    pieces = split_message(text, MAX_CONTENT - len(REASONING_HEADING) - 4)
    return [f"{REASONING_HEADING if n == 0 else ''}||{piece}||" for n, piece in enumerate(pieces)]


def failure_text(shown: str, message: str) -> tuple[str, str]:
    """(what the message should show, a note to post separately or "") after a failure."""
    note = message if message.startswith("⚠️") else f"⚠️ {message}"
    if not shown:
        return note[:MAX_CONTENT], ""
    combined = f"{shown}\n\n{note}"
    if len(combined) <= MAX_CONTENT:
        return combined, ""
    return shown, note[:MAX_CONTENT]


class StreamedMessage:
    """One message of an answer: `_show` posts it the first time and edits it after; further image
    batches and a failure's note are separate messages (`_extra`)."""

    _message: discord.Message | discord.WebhookMessage | None = None
    _shown = ""  # the text shown, without the marker
    _reasoning = ""  # the reasoning summary, posted after the final text (KeepsReasoning)

    @property
    def message_id(self) -> str:
        return str(self._message.id) if self._message is not None else ""

    async def reasoning(self, text: str) -> None:
        """The reasoning summary: hidden in spoilers in a message after the final text."""
        self._reasoning = text

    async def update(self, text: str) -> None:
        """Show `text` with the in-progress marker."""
        await self._show(no_previews(text) + MARKER)
        self._shown = text

    async def finish(self, text: str, *, images: Sequence[Image] = ()) -> None:
        """Show `text` as final, with `images` uploaded as files, then the reasoning if kept."""
        batches = upload_batches(images) if images else [[]]
        await self._show(no_previews(text) or ("" if images else "…"), files=image_files(batches[0]))
        self._shown = text
        for batch in batches[1:]:
            await self._extra(content=None, files=image_files(batch), reply_to=self.message_id)
        reasoning, self._reasoning = self._reasoning, ""
        for piece in reasoning_messages(reasoning):
            try:
                await self._extra(content=piece, reply_to=self.message_id, ping=False)
            except PlatformError as exc:  # the answer is delivered: its reasoning is a courtesy
                log.info("the reasoning could not be posted: %s", type(exc).__name__)
                break

    async def fail(self, message: str) -> None:
        """Keep what was shown, without the marker, and say what happened."""
        content, note = failure_text(no_previews(self._shown), message)
        await self._show(content)
        if note:
            await self._extra(content=note, reply_to=self.message_id, ping=False)

    async def _show(self, content: str, *, files: Sequence[discord.File] = ()) -> None:
        raise NotImplementedError

    async def _extra(
        self, *, content: str | None, files: Sequence[discord.File] = (), reply_to: str, ping: bool = True
    ) -> None:
        raise NotImplementedError
