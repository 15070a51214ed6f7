"""The `digest` chat command: its words and `key:value` options, the digest calls they make and the
answers they give."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from bot.digests.compose import local_time
from bot.errors import BadInput
from bot.platform import Incoming

if TYPE_CHECKING:
    from bot.digests.schedules import Digests

USAGE_TEXT = (
    "Use `digest add schedule:<when> [channel:<channel>]`, `digest list`, `digest remove id:<n>` or "
    "`digest now [channel:<channel>]`."
)

_MENTION = re.compile(r"^<#([A-Za-z0-9]+)(?:\|[^>]*)?>$")


async def answer(digests: Digests, incoming: Incoming, *, is_admin: bool) -> str:
    """Run `digest add|list|remove|now` for this incoming; return the text to answer with."""
    options, words = _arguments(incoming)
    action = (options.pop("action", "") or (words.pop(0) if words else "list")).lower()
    place, user = incoming.place, incoming.author.id
    channel = _channel_id(options["channel"]) if options.get("channel") else None
    if action == "add":
        when = " ".join(filter(None, [options.get("schedule", ""), *words]))
        info = await digests.add(place, schedule=when, channel=channel, created_by=user, is_admin=is_admin)
        where = "this channel" if info.channel == place.channel else f"<#{info.channel}>"
        return (
            f"Digest #{info.id} added: {info.description}, summarising {where}, posted here. "
            f"Next run: {local_time(info.next_run_at, info.schedule.timezone)}."
        )
    if action == "list":
        listed = await digests.list(place)
        if not listed:
            return "No digests in this workspace yet. " + USAGE_TEXT
        return "\n".join(
            f"• #{d.id}: {d.description}, <#{d.channel}> → <#{d.place.channel}>, next "
            f"{local_time(d.next_run_at, d.schedule.timezone)}"
            for d in listed
        )
    if action == "remove":
        raw = options.get("id") or (words[0] if words else "")
        if not raw.lstrip("#").isdigit():
            raise BadInput("Say which digest to remove: `digest remove id:<n>` (see `digest list`).")
        digest_id = int(raw.lstrip("#"))
        if await digests.remove(place, digest_id, by=user, is_admin=is_admin):
            return f"Digest #{digest_id} removed."
        return f"There is no digest #{digest_id} in this workspace."
    if action == "now":
        outcome = await digests.run_now(place, channel, is_admin=is_admin)
        if outcome.status == "failed":
            return "The digest could not be made (see above); nothing was charged."
        return f"Digest of the last 24 hours: {outcome.message_count} message(s) read."
    raise BadInput(f"`digest {action}` is not a digest command. {USAGE_TEXT}")


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


def _channel_id(value: str) -> str:
    match = _MENTION.match(value.strip())
    return match.group(1) if match else value.strip().lstrip("#")
