"""The `digest` chat command: its words and `key:value` options, what it asks of the digest desk and
the answers it gives."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from bot.digests.compose import local_time
from bot.digests.making import DigestOutcome
from bot.digests.store import DigestInfo
from bot.errors import BadInput
from bot.platform import Incoming, Place

USAGE_TEXT = (
    "Use `digest add schedule:<when> [channel:<channel>]`, `digest list`, `digest remove id:<n>` or "
    "`digest now [channel:<channel>]`."
)

_MENTION = re.compile(r"^<#([A-Za-z0-9]+)(?:\|[^>]*)?>$")


class DigestDesk(Protocol):
    """What the `digest` command asks of the digests (bot.digests.book.Digests is the real one)."""

    async def add(
        self, place: Place, *, schedule: str, channel: str | None, created_by: str, is_admin: bool = False
    ) -> DigestInfo:
        """A new digest of `channel` (None: this one) posted in `place` on `schedule`, as typed."""
        ...

    async def workspace_digests(self, place: Place) -> list[DigestInfo]:
        """The digests of `place`'s workspace, oldest first."""
        ...

    async def remove(self, place: Place, digest_id: int, *, by: str, is_admin: bool = False) -> bool:
        """Delete a digest of this workspace (its creator or an admin); False when there is none."""
        ...

    async def run_now(
        self, place: Place, channel: str | None = None, *, is_admin: bool = False
    ) -> DigestOutcome:
        """A digest of the last 24 hours of `channel` (None: this one), posted in `place` now."""
        ...


@dataclass(frozen=True)
class _Request:
    """One `digest` command, read: who asks where, the options given and the other words."""

    place: Place
    user: str
    is_admin: bool
    options: dict[str, str]
    words: list[str]

    @property
    def channel(self) -> str | None:
        value = self.options.get("channel")
        if not value:
            return None
        match = _MENTION.match(value.strip())
        return match.group(1) if match else value.strip().lstrip("#")


async def answer(desk: DigestDesk, incoming: Incoming, *, is_admin: bool) -> str:
    """Run `digest add|list|remove|now` for this incoming; return the text to answer with."""
    options, words = _arguments(incoming)
    action = (options.pop("action", "") or (words.pop(0) if words else "list")).lower()
    act = _ACTIONS.get(action)
    if act is None:
        raise BadInput(f"`digest {action}` is not a digest command. {USAGE_TEXT}")
    return await act(desk, _Request(incoming.place, incoming.author.id, is_admin, options, words))


async def _add(desk: DigestDesk, request: _Request) -> str:
    place = request.place
    when = " ".join(filter(None, [request.options.get("schedule", ""), *request.words]))
    info = await desk.add(
        place, schedule=when, channel=request.channel, created_by=request.user, is_admin=request.is_admin
    )
    where = "this channel" if info.channel == place.channel else f"<#{info.channel}>"
    return (
        f"Digest #{info.id} added: {info.description}, summarising {where}, posted here. "
        f"Next run: {local_time(info.next_run_at, info.schedule.timezone)}."
    )


async def _list(desk: DigestDesk, request: _Request) -> str:
    listed = await desk.workspace_digests(request.place)
    if not listed:
        return "No digests in this workspace yet. " + USAGE_TEXT
    return "\n".join(
        f"• #{d.id}: {d.description}, <#{d.channel}> → <#{d.place.channel}>, next "
        f"{local_time(d.next_run_at, d.schedule.timezone)}"
        for d in listed
    )


async def _remove(desk: DigestDesk, request: _Request) -> str:
    raw = request.options.get("id") or (request.words[0] if request.words else "")
    if not raw.lstrip("#").isdigit():
        raise BadInput("Say which digest to remove: `digest remove id:<n>` (see `digest list`).")
    digest_id = int(raw.lstrip("#"))
    if await desk.remove(request.place, digest_id, by=request.user, is_admin=request.is_admin):
        return f"Digest #{digest_id} removed."
    return f"There is no digest #{digest_id} in this workspace."


async def _now(desk: DigestDesk, request: _Request) -> str:
    outcome = await desk.run_now(request.place, request.channel, is_admin=request.is_admin)
    if outcome.status == "failed":
        return "The digest could not be made (see above); nothing was charged."
    return f"Digest of the last 24 hours: {outcome.message_count} message(s) read."


_ACTIONS: dict[str, Callable[[DigestDesk, _Request], Awaitable[str]]] = {
    "add": _add,
    "list": _list,
    "remove": _remove,
    "now": _now,
}


def _arguments(incoming: Incoming) -> tuple[dict[str, str], list[str]]:
    """Options (`key:value` words for schedule, channel, id and action) and the remaining words."""
    command = incoming.command
    options = {k.lower(): v for k, v in (command.options if command else {}).items()}
    words: list[str] = []
    for word in (command.text if command else incoming.text).split():
        key, sep, value = word.partition(":")
        if sep and key.lower() in {"schedule", "channel", "id", "action"}:
            options[key.lower()] = value
        else:
            words.append(word)
    return options, words
