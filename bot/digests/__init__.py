"""Scheduled channel digests: the `digest` command, slot claims in the database, and a run that reads
the channel, asks Grok for a structured (JSON-schema) digest in parts, renders Markdown and posts it.

A run row moves running -> posting -> posted|empty, or -> failed. `posting` is written before the
first post: a successor finding it with an expired lease marks the run failed instead of posting
again (at most once; the one window is a crash during the post itself). `running` with an expired
lease is taken over and run again, since nothing was posted yet.

Modules: `schedules` (Digests: add, list, remove, digest now), `command` (the chat command), `runs`
(claiming and running slots, the states above) and `compose` (schema, chunks, merge, Markdown).
"""

from __future__ import annotations

from bot.digests.command import USAGE_TEXT
from bot.digests.compose import (
    ANSWER_TOKENS,
    CHUNK_CHARS,
    DIGEST_SCHEMA,
    ITEMS,
    MAX_MESSAGE_CHARS,
    SECTIONS,
    SYSTEM_PROMPT,
    merge,
    render,
)
from bot.digests.runs import DigestOutcome
from bot.digests.schedules import MAX_PER_WORKSPACE, DigestInfo, Digests

__all__ = [
    "ANSWER_TOKENS",
    "CHUNK_CHARS",
    "DIGEST_SCHEMA",
    "ITEMS",
    "MAX_MESSAGE_CHARS",
    "MAX_PER_WORKSPACE",
    "SECTIONS",
    "SYSTEM_PROMPT",
    "USAGE_TEXT",
    "DigestInfo",
    "DigestOutcome",
    "Digests",
    "merge",
    "render",
]
