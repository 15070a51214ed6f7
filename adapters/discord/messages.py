"""What one Discord message of an answer carries: at most 2,000 characters, the in-progress marker,
images as files in batches under Discord's request limits, a failure's note; and `StreamedMessage`,
the message that is posted once and edited after.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import discord

from bot.platform import Image

MARKER = " ⚪"  # appended while an answer is still streaming (llmcord's convention)
MAX_CONTENT = 2000
MAX_UPLOAD = 10 * 1024 * 1024  # per file since 2025-01-16, without boosts
MAX_REQUEST = 24 * 1024 * 1024  # Discord caps a request at 25 MiB; keep room for the form
MAX_FILES = 10  # per message

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

    @property
    def message_id(self) -> str:
        return str(self._message.id) if self._message is not None else ""

    async def update(self, text: str) -> None:
        """Show `text` with the in-progress marker."""
        await self._show(text + MARKER)
        self._shown = text

    async def finish(self, text: str, *, images: Sequence[Image] = ()) -> None:
        """Show `text` as final, with `images` uploaded as files."""
        batches = upload_batches(images) if images else [[]]
        await self._show(text or ("" if images else "…"), files=image_files(batches[0]))
        self._shown = text
        for batch in batches[1:]:
            await self._extra(content=None, files=image_files(batch), reply_to=self.message_id)

    async def fail(self, message: str) -> None:
        """Keep what was shown, without the marker, and say what happened."""
        content, note = failure_text(self._shown, message)
        await self._show(content)
        if note:
            await self._extra(content=note, reply_to=self.message_id, ping=False)

    async def _show(self, content: str, *, files: Sequence[discord.File] = ()) -> None:
        raise NotImplementedError

    async def _extra(
        self, *, content: str | None, files: Sequence[discord.File] = (), reply_to: str, ping: bool = True
    ) -> None:
        raise NotImplementedError
