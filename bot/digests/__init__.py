"""Scheduled channel digests: the `digest` command, slot claims in the database, and a run that reads
the channel, asks Grok for a structured (JSON-schema) digest in parts, renders Markdown and posts it.

A run row moves running -> posting -> posted|empty, or -> failed. `posting` is written before the
first post: a successor finding it with an expired lease marks the run failed instead of posting
again (at most once; the one window is a crash during the post itself). `running` with an expired
lease is taken over and run again, since nothing was posted yet.

Modules: `book` (Digests: add, list, remove, digest now; the entry points), `command` (the chat
command, over the DigestDesk it needs), `recurrence` (schedules as typed: daily times, weekdays,
cron), `store` (the SQL, behind values), `runs` (claiming slots, taking over abandoned runs, the
lease of a ScheduledRun), `making` (read and compose, post, charge: the steps every run shares)
and `compose` (schema, chunks, merge, Markdown).
"""

from __future__ import annotations

from bot.digests.book import Digests

__all__ = ["Digests"]
