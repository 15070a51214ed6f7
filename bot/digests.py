"""Scheduled channel digests: the `digest` command, slot claims in the database, and a run that reads
the channel, asks Grok for a structured (JSON-schema) digest in parts, renders Markdown and posts it.

A run row moves running -> posting -> posted|empty, or -> failed. `posting` is written before the
first post: a successor finding it with an expired lease marks the run failed instead of posting
again (at most once; the one window is a crash during the post itself). `running` with an expired
lease is taken over and run again, since nothing was posted yet.
"""

from __future__ import annotations

import builtins
import logging
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, delete, func, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col, select

from bot.db import Sessions
from bot.errors import BadInput, GrokError, GrokInvalidOutput, PermissionDenied, PlatformError
from bot.grok import ChatMessage, ChatRequest, Completion, GrokClient, Usage
from bot.jobs import claimable
from bot.platform import ChannelMessage, Incoming, Place, Platform
from bot.quotas import Charge, Quotas, Subject
from bot.schedule import Schedule, parse_schedule
from bot.streaming import split_message
from bot.tables import DigestRun, DigestSchedule

log = logging.getLogger(__name__)

MAX_PER_WORKSPACE = 50
MAX_MESSAGE_CHARS = 2_000  # one chat message in the transcript; longer ones are cut
CHUNK_CHARS = 24_000  # transcript characters per Grok call (about 7k tokens)
ANSWER_TOKENS = 2_000
ITEMS = 20

_TEXT = {"type": "string"}
DIGEST_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "topics": {
            "type": "array",
            "maxItems": ITEMS,
            "items": {
                "type": "object",
                "properties": {"title": _TEXT, "summary": _TEXT},
                "required": ["title", "summary"],
                "additionalProperties": False,
            },
        },
        "decisions": {"type": "array", "maxItems": ITEMS, "items": _TEXT},
        "open_questions": {"type": "array", "maxItems": ITEMS, "items": _TEXT},
        "action_items": {
            "type": "array",
            "maxItems": ITEMS,
            "items": {
                "type": "object",
                "properties": {"task": _TEXT, "owner": {"type": ["string", "null"]}},
                "required": ["task", "owner"],
                "additionalProperties": False,
            },
        },
        "links": {
            "type": "array",
            "maxItems": ITEMS,
            "items": {
                "type": "object",
                "properties": {"url": _TEXT, "title": _TEXT},
                "required": ["url", "title"],
                "additionalProperties": False,
            },
        },
    },
    "required": ["topics", "decisions", "open_questions", "action_items", "links"],
    "additionalProperties": False,
}
SECTIONS = ("topics", "decisions", "open_questions", "action_items", "links")

SYSTEM_PROMPT = (
    "You write digests of a chat channel for people who missed the conversation. The messages are "
    "given oldest first, one per line as `[time] author: text`. Extract the topics discussed (a short "
    "title and one or two sentences each), decisions that were made, questions still open, action "
    "items with the name of their owner when someone took or was given the task (null otherwise), and "
    "notable links (the URL exactly as written and a short title). Use only what the messages say; "
    "never invent. Write in the language most messages use. Leave a list empty when there is nothing "
    "for it. Reply with the JSON object only."
)
USAGE_TEXT = (
    "Use `digest add schedule:<when> [channel:<channel>]`, `digest list`, `digest remove id:<n>` or "
    "`digest now [channel:<channel>]`."
)


@dataclass(frozen=True)
class DigestInfo:
    id: int
    place: Place  # where it is posted
    channel: str  # the channel summarised
    schedule: Schedule
    next_run_at: datetime
    since: datetime | None  # the next run summarises messages from here on
    post_when_empty: bool
    created_by: str

    @property
    def description(self) -> str:
        return self.schedule.describe()


@dataclass(frozen=True)
class DigestOutcome:
    status: str  # posted | empty | failed
    message_count: int
    cost_ticks: int
    message_ids: tuple[str, ...] = ()
    error: str = ""


@dataclass
class _Composed:
    text: str
    message_count: int
    cost_ticks: int = 0
    model: str = ""
    usage: Usage = field(default_factory=Usage)


class _LeaseLost(Exception):
    """A run's conditional UPDATE matched no row: another instance has taken the run over."""


class Digests:
    """Digest schedules of every workspace and their runs, claimed slot by slot in the database."""

    def __init__(
        self,
        *,
        sessions: Sessions,
        grok: GrokClient,
        quotas: Quotas,
        platforms: Mapping[str, Platform],
        clock: Callable[[], datetime],
        instance_id: str,
        timezone: str = "UTC",
        model: str = "grok-4.3",
        lease: timedelta = timedelta(minutes=5),
        chunk_chars: int = CHUNK_CHARS,
    ) -> None:
        self._sessions = sessions
        self._grok = grok
        self._quotas = quotas
        self._platforms = platforms
        self._clock = clock
        self._me = instance_id[:64]
        self._timezone = timezone
        self._model = model
        self._lease = lease
        self._chunk_chars = chunk_chars

    # -- the command ------------------------------------------------------------------------

    async def command(self, incoming: Incoming, platform: Platform, *, is_admin: bool) -> str:
        """Run `digest add|list|remove|now` for this incoming; return the text to answer with."""
        options, words = _arguments(incoming)
        action = (options.pop("action", "") or (words.pop(0) if words else "list")).lower()
        place, user = incoming.place, incoming.author.id
        channel = _channel_id(options["channel"]) if options.get("channel") else None
        if action == "add":
            when = " ".join(filter(None, [options.get("schedule", ""), *words]))
            info = await self.add(place, schedule=when, channel=channel, created_by=user, is_admin=is_admin)
            where = "this channel" if info.channel == place.channel else f"<#{info.channel}>"
            return (
                f"Digest #{info.id} added: {info.description}, summarising {where}, posted here. "
                f"Next run: {_local(info.next_run_at, info.schedule.timezone)}."
            )
        if action == "list":
            digests = await self.list(place)
            if not digests:
                return "No digests in this workspace yet. " + USAGE_TEXT
            return "\n".join(
                f"• #{d.id}: {d.description}, <#{d.channel}> → <#{d.place.channel}>, next "
                f"{_local(d.next_run_at, d.schedule.timezone)}"
                for d in digests
            )
        if action == "remove":
            raw = options.get("id") or (words[0] if words else "")
            if not raw.lstrip("#").isdigit():
                raise BadInput("Say which digest to remove: `digest remove id:<n>` (see `digest list`).")
            digest_id = int(raw.lstrip("#"))
            if await self.remove(place, digest_id, by=user, is_admin=is_admin):
                return f"Digest #{digest_id} removed."
            return f"There is no digest #{digest_id} in this workspace."
        if action == "now":
            outcome = await self.run_now(place, channel, is_admin=is_admin)
            if outcome.status == "failed":
                return "The digest could not be made (see above); nothing was charged."
            return f"Digest of the last 24 hours: {outcome.message_count} message(s) read."
        raise BadInput(f"`digest {action}` is not a digest command. {USAGE_TEXT}")

    # -- schedules --------------------------------------------------------------------------

    async def add(
        self,
        place: Place,
        *,
        schedule: str,
        channel: str | None,
        created_by: str,
        is_admin: bool = False,
        post_when_empty: bool = True,
    ) -> DigestInfo:
        """A new digest of `channel` (default: this one) posted in `place`'s channel on `schedule`."""
        channel = channel or place.channel
        self._may_read(place, channel, is_admin)
        now = self._clock()
        parsed = parse_schedule(schedule, default_timezone=self._timezone, now=now)
        first = parsed.next_after(now)
        assert first is not None  # compile_schedule refused schedules that never run
        async with self._sessions.begin() as session:
            count = await session.exec(
                select(func.count()).select_from(DigestSchedule).where(*_in_workspace(place))
            )
            if count.one() >= MAX_PER_WORKSPACE:
                raise BadInput(f"A workspace can have {MAX_PER_WORKSPACE} digests; remove one first.")
            row = DigestSchedule(
                platform=place.platform,
                workspace=place.workspace,
                channel=channel,
                post_channel=place.channel,
                cron_expr=parsed.cron,
                timezone=parsed.timezone,
                post_when_empty=post_when_empty,
                next_run_at=first,
                # The first digest covers one period before its slot, as every later one does.
                last_run_at=parsed.previous_before(first) or first - timedelta(days=1),
                created_by=created_by,
                created_at=now,
            )
            session.add(row)
            await session.flush()
            info = _info(row)
        log.info("digest %d added in %s by %s", info.id, place.key, created_by)
        return info

    async def list(self, place: Place) -> builtins.list[DigestInfo]:
        """The digests of `place`'s workspace, oldest first."""
        async with self._sessions() as session:
            rows = await session.exec(
                select(DigestSchedule).where(*_in_workspace(place)).order_by(col(DigestSchedule.id))
            )
            return [_info(row) for row in rows.all()]

    async def remove(self, place: Place, digest_id: int, *, by: str, is_admin: bool = False) -> bool:
        """Delete a digest of this workspace (its creator or an admin); False when there is none."""
        async with self._sessions.begin() as session:
            row = (
                await session.exec(
                    select(DigestSchedule).where(*_in_workspace(place), col(DigestSchedule.id) == digest_id)
                )
            ).one_or_none()
            if row is None:
                return False
            if row.created_by != by and not is_admin:
                raise PermissionDenied("Only the digest's creator or an admin can remove it.")
            await session.exec(delete(DigestSchedule).where(col(DigestSchedule.id) == digest_id))
        return True

    async def run_now(
        self, place: Place, channel: str | None = None, *, is_admin: bool = False
    ) -> DigestOutcome:
        """A digest of the last 24 hours of `channel` (default: this one), posted in `place` now."""
        channel = channel or place.channel
        self._may_read(place, channel, is_admin)
        until = self._clock()
        since = until - timedelta(days=1)
        source = Place(place.platform, place.workspace, channel)
        key = f"digest-now:{place.platform}:{place.workspace}:{channel}:{until.isoformat()}"
        return await self._run(
            source=source,
            target=place,
            since=since,
            until=until,
            timezone=self._timezone,
            post_when_empty=True,
            charge_key=key,
            run=None,
        )

    def _may_read(self, place: Place, channel: str, is_admin: bool) -> None:
        # Another channel may be private: only admins may have it summarised somewhere else.
        if channel != place.channel and not is_admin:
            raise PermissionDenied("Only admins can digest another channel; run it in that channel.")

    # -- ticks and claims -------------------------------------------------------------------

    async def tick(self) -> int:
        """Take over abandoned runs, then claim and run every due slot; returns how many ran."""
        ran = 0
        for run in await self._claim_stale():
            ran += await self._guarded(f"digest {run[1]} (recovered run)", self._recover(run))
        now = self._clock()
        async with self._sessions() as session:
            due = await session.exec(
                select(DigestSchedule)
                .where(
                    col(DigestSchedule.enabled),
                    col(DigestSchedule.platform).in_(list(self._platforms)),
                    col(DigestSchedule.next_run_at) <= now,
                )
                .order_by(col(DigestSchedule.next_run_at))
                .limit(100)
            )
            rows = due.all()
        for row in rows:
            ran += await self._guarded(f"digest {row.id}", self._claim_and_run(row))
        return ran

    async def _guarded(self, label: str, unit: Awaitable[int]) -> int:
        try:
            return await unit
        except _LeaseLost:
            log.info("%s: run taken over by another instance", label)
        # The job loop's one catch-all, around one unit of work (one slot): log it with its
        # traceback and go on with the other slots; a `running` run is retried after its lease.
        except Exception:
            log.exception("%s: run failed", label)
        return 0

    async def _claim_and_run(self, row: DigestSchedule) -> int:
        assert row.id is not None
        now = self._clock()
        schedule = Schedule(row.cron_expr, row.timezone)
        slot = schedule.latest_until(row.next_run_at, now)  # missed slots after downtime run once
        following = schedule.next_after(slot)
        async with self._sessions.begin() as session:
            # Compare-and-set: exactly one instance moves next_run_at from the value it read.
            won = await session.exec(
                update(DigestSchedule)
                .where(col(DigestSchedule.id) == row.id, col(DigestSchedule.next_run_at) == row.next_run_at)
                .values(next_run_at=following or row.next_run_at, enabled=following is not None)
                .execution_options(synchronize_session=False)
            )
            if won.rowcount != 1:
                return 0
            module = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
            # UNIQUE(digest_id, slot) is the backstop: a slot that already has a run is not rerun.
            inserted = await session.exec(
                module.insert(DigestRun)
                .values(
                    digest_id=row.id,
                    slot=slot,
                    status="running",
                    lease_owner=self._me,
                    lease_until=now + self._lease,
                    started_at=now,
                )
                .on_conflict_do_nothing(index_elements=["digest_id", "slot"])
                .returning(col(DigestRun.id))
            )
            run_id = inserted.scalar_one_or_none()
            # Read again after winning: the period starts where the previous run really ended.
            fresh = await session.get(DigestSchedule, row.id, populate_existing=True)
        if run_id is None or fresh is None:
            return 0
        await self._run_slot(fresh, run_id, slot)
        return 1

    async def _claim_stale(self) -> builtins.list[tuple[int, int, datetime, str]]:
        """Lease the runs whose instance died (their lease expired)."""
        now = self._clock()
        ours = select(col(DigestSchedule.id)).where(col(DigestSchedule.platform).in_(list(self._platforms)))
        stale: builtins.list[ColumnElement[bool]] = [
            col(DigestRun.status).in_(["running", "posting"]),
            col(DigestRun.lease_until) < now,
            col(DigestRun.digest_id).in_(ours),  # another instance may post to other platforms
        ]
        async with self._sessions.begin() as session:
            pick = select(col(DigestRun.id)).where(*stale).order_by(col(DigestRun.lease_until)).limit(20)
            claimed = await session.exec(
                update(DigestRun)
                .where(col(DigestRun.id).in_(claimable(session, pick)), *stale)
                .values(lease_owner=self._me, lease_until=now + self._lease)
                .returning(
                    col(DigestRun.id), col(DigestRun.digest_id), col(DigestRun.slot), col(DigestRun.status)
                )
                .execution_options(synchronize_session=False)
            )
            return [(r.id, r.digest_id, r.slot, r.status) for r in claimed.all()]

    async def _recover(self, run: tuple[int, int, datetime, str]) -> int:
        """A dead instance's run: a `running` one is run again, a `posting` one closed as failed."""
        run_id, digest_id, slot, status = run
        async with self._sessions() as session:
            row = await session.get(DigestSchedule, digest_id)
        if row is None or row.platform not in self._platforms:
            return 0  # removed meanwhile (the cascade takes the run), or not ours to post
        if status == "posting":
            # It may have been posted: never post twice. Its period counts as done.
            await self._finish(
                run_id, "posting", "failed", row, slot, advance=True, error="interrupted while posting"
            )
            log.warning("digest %d slot %s: interrupted while posting; not posted again", digest_id, slot)
            return 0
        await self._run_slot(row, run_id, slot)
        return 1

    async def _run_slot(self, row: DigestSchedule, run_id: int, slot: datetime) -> None:
        schedule = Schedule(row.cron_expr, row.timezone)
        since = row.last_run_at or schedule.previous_before(slot) or slot - timedelta(days=1)
        if since >= slot:
            await self._finish(
                run_id, "running", "failed", row, slot, advance=False, error="superseded by a later run"
            )
            return
        await self._run(
            source=Place(row.platform, row.workspace, row.channel),
            target=Place(row.platform, row.workspace, row.post_channel),
            since=since,
            until=slot,
            timezone=row.timezone,
            post_when_empty=row.post_when_empty,
            charge_key=f"digest:{row.id}:{slot.isoformat()}",
            run=(run_id, row),
        )

    # -- one run ----------------------------------------------------------------------------

    async def _run(
        self,
        *,
        source: Place,
        target: Place,
        since: datetime,
        until: datetime,
        timezone: str,
        post_when_empty: bool,
        charge_key: str,
        run: tuple[int, DigestSchedule] | None,
    ) -> DigestOutcome:
        platform = self._platforms[target.platform]
        try:
            history = await platform.channel_history(source, since=since, until=until)
            messages = [m for m in history if not m.author.is_bot and m.text.strip()]
            composed = await self._compose(messages, source, target, since, until, timezone, run)
        except (GrokError, PlatformError) as exc:
            return await self._failed(platform, target, run, until, exc)
        status = "posted" if messages else "empty"
        posted: tuple[str, ...] = ()
        if run is not None:
            await self._move_run(run[0], "running", "posting", message_count=len(messages))
        if messages or post_when_empty:
            limit = platform.capabilities.max_message_length
            posted_ids: builtins.list[str] = []
            try:
                for part in split_message(composed.text, limit):
                    posted_ids.append(await platform.post_text(target, part))
            except PlatformError as exc:
                # Refused: not posted (nothing charged). A digest half out counts as done.
                log.warning("digest of %s not posted: %s", source.key, exc)
                if run is not None:
                    await self._finish(
                        run[0],
                        "posting",
                        "failed",
                        run[1],
                        until,
                        advance=bool(posted_ids),
                        error=str(exc)[:2000],
                    )
                return DigestOutcome("failed", len(messages), 0, tuple(posted_ids), error=str(exc))
            posted = tuple(posted_ids)
        if composed.cost_ticks or composed.usage.total_tokens:
            usage = composed.usage
            await self._quotas.charge(
                Subject(target.platform, target.workspace, ""),
                Charge(
                    kind="digest",
                    model=composed.model[:64],
                    cost_ticks=composed.cost_ticks,
                    idempotency_key=charge_key[:160],
                    prompt_tokens=usage.prompt_tokens,
                    completion_tokens=usage.completion_tokens,
                    reasoning_tokens=usage.reasoning_tokens,
                    cached_tokens=usage.cached_tokens,
                    conversation_key=f"digest:{source.key}"[:300],
                ),
            )
        if run is not None:
            await self._finish(
                run[0], "posting", status, run[1], until, advance=True, cost_ticks=composed.cost_ticks
            )
        log.info(
            "digest of %s: %s, %d messages, %d ticks", source.key, status, len(messages), composed.cost_ticks
        )
        return DigestOutcome(status, len(messages), composed.cost_ticks, posted)

    async def _compose(
        self,
        messages: Sequence[ChannelMessage],
        source: Place,
        target: Place,
        since: datetime,
        until: datetime,
        timezone: str,
        run: tuple[int, DigestSchedule] | None,
    ) -> _Composed:
        where = "" if source.channel == target.channel else f" of <#{source.channel}>"
        period = f"{_local(since, timezone)} – {_local(until, timezone)} ({timezone})"
        if not messages:
            return _Composed(f"📋 Nothing new{where} between {period}.", 0)
        chunks = _chunks([_line(m, timezone) for m in messages], self._chunk_chars)
        partials: builtins.list[dict[str, Any]] = []
        composed = _Composed("", len(messages), model=self._model)
        for number, chunk in enumerate(chunks, 1):
            part = f" (part {number} of {len(chunks)})" if len(chunks) > 1 else ""
            request = ChatRequest(
                model=self._model,
                messages=(
                    ChatMessage("system", SYSTEM_PROMPT),
                    ChatMessage("user", f"Channel messages from {period}{part}:\n\n{chunk}"),
                ),
                max_tokens=ANSWER_TOKENS,
            )
            value, completion = await self._grok.structured(
                request, schema=DIGEST_SCHEMA, name="channel_digest"
            )
            partials.append(value)
            _add_cost(composed, completion, self._grok)
            if run is not None:
                await self._move_run(run[0], "running", "running")  # renews the lease between calls
        header = f"📋 **Digest{where}** · {period} · {len(messages)} messages"
        composed.text = render(merge(partials), header=header)
        return composed

    async def _failed(
        self,
        platform: Platform,
        target: Place,
        run: tuple[int, DigestSchedule] | None,
        until: datetime,
        exc: GrokError | PlatformError,
    ) -> DigestOutcome:
        """Not charged: the workspace got no digest. The period stays open for the next run."""
        reason = (
            "Grok's reply did not have the digest's format"
            if isinstance(exc, GrokInvalidOutput)
            else str(exc)
        )
        log.warning("digest run failed: %s", exc)
        if run is not None:
            await self._move_run(
                run[0], "running", "failed", error=str(exc)[:2000], finished_at=self._clock()
            )
        notice = f"⚠️ The digest could not be made: {reason}. Nothing was charged; " + (
            "these messages will be included in the next digest." if run is not None else "try again later."
        )
        try:
            await platform.post_text(target, notice)
        except PlatformError as post_error:
            log.warning("digest failure notice not posted: %s", post_error)
        return DigestOutcome("failed", 0, 0, error=str(exc))

    async def _move_run(self, run_id: int, start: str, end: str, **values: Any) -> None:
        now = self._clock()
        async with self._sessions.begin() as session:
            moved = await session.exec(
                update(DigestRun)
                .where(
                    col(DigestRun.id) == run_id,
                    col(DigestRun.status) == start,
                    col(DigestRun.lease_owner) == self._me,
                )
                .values(status=end, lease_until=now + self._lease, **values)
                .execution_options(synchronize_session=False)
            )
        if moved.rowcount != 1:
            raise _LeaseLost

    async def _finish(
        self,
        run_id: int,
        start: str,
        end: str,
        row: DigestSchedule,
        until: datetime,
        *,
        advance: bool,
        **values: Any,
    ) -> None:
        """Close a run; `advance`: its period is done (the next run starts at `until`)."""
        now = self._clock()
        async with self._sessions.begin() as session:
            moved = await session.exec(
                update(DigestRun)
                .where(
                    col(DigestRun.id) == run_id,
                    col(DigestRun.status) == start,
                    col(DigestRun.lease_owner) == self._me,
                )
                .values(status=end, lease_owner=None, lease_until=None, finished_at=now, **values)
                .execution_options(synchronize_session=False)
            )
            if moved.rowcount != 1:
                raise _LeaseLost
            if advance:
                await session.exec(
                    update(DigestSchedule)
                    .where(col(DigestSchedule.id) == row.id)
                    .where(
                        (col(DigestSchedule.last_run_at).is_(None))
                        | (col(DigestSchedule.last_run_at) < until)
                    )
                    .values(last_run_at=until)
                    .execution_options(synchronize_session=False)
                )


# -- transcript, merge, render -------------------------------------------------------------------


def _line(message: ChannelMessage, timezone: str) -> str:
    text = " ".join(message.text.split())
    if len(text) > MAX_MESSAGE_CHARS:
        text = text[:MAX_MESSAGE_CHARS] + " …"
    thread = " (in a thread)" if message.thread else ""
    sent = message.sent_at.astimezone(ZoneInfo(timezone))
    return f"[{sent:%a %d %H:%M}] {message.author.name}{thread}: {text}"


def _chunks(lines: Sequence[str], budget: int) -> builtins.list[str]:
    """Consecutive lines grouped into chunks of at most `budget` characters (a line is never split)."""
    chunks: builtins.list[str] = []
    current: builtins.list[str] = []
    size = 0
    for line in lines:
        if current and size + len(line) + 1 > budget:
            chunks.append("\n".join(current))
            current, size = [], 0
        current.append(line)
        size += len(line) + 1
    if current:
        chunks.append("\n".join(current))
    return chunks


def merge(partials: Sequence[Mapping[str, Any]]) -> dict[str, builtins.list[Any]]:
    """Partial digests (chronological) → one, deterministically.

    Chosen over a final Grok call: it costs nothing, cannot fail validation, and keeps every item
    and owner as extracted; topics of the same title are joined, exact repeats are dropped."""
    merged: dict[str, builtins.list[Any]] = {name: [] for name in SECTIONS}
    topics: dict[str, dict[str, str]] = {}
    seen: set[tuple[str, str]] = set()
    for partial in partials:
        for topic in partial["topics"]:
            key = _norm(topic["title"])
            if key in topics:
                topics[key]["summary"] += " " + topic["summary"]
            else:
                topics[key] = dict(topic)
                merged["topics"].append(topics[key])
        for name in ("decisions", "open_questions"):
            for item in partial[name]:
                if (name, _norm(item)) not in seen:
                    seen.add((name, _norm(item)))
                    merged[name].append(item)
        for action in partial["action_items"]:
            key = _norm(f"{action['task']}\x00{action['owner'] or ''}")
            if ("action", key) not in seen:
                seen.add(("action", key))
                merged["action_items"].append(action)
        for link in partial["links"]:
            if ("link", link["url"]) not in seen:
                seen.add(("link", link["url"]))
                merged["links"].append(link)
    return merged


def render(digest: Mapping[str, Sequence[Any]], *, header: str) -> str:
    """Markdown for the adapters to render natively."""
    sections = [header]
    if digest["topics"]:
        sections.append(
            "**Topics**\n" + "\n".join(f"• **{t['title']}**: {t['summary']}" for t in digest["topics"])
        )
    if digest["decisions"]:
        sections.append("**Decisions**\n" + "\n".join(f"• {d}" for d in digest["decisions"]))
    if digest["open_questions"]:
        sections.append("**Open questions**\n" + "\n".join(f"• {q}" for q in digest["open_questions"]))
    if digest["action_items"]:
        items = [f"• {a['task']} — {a['owner'] or 'no owner yet'}" for a in digest["action_items"]]
        sections.append("**Action items**\n" + "\n".join(items))
    if digest["links"]:
        sections.append(
            "**Links**\n" + "\n".join(f"• [{k['title'] or k['url']}]({k['url']})" for k in digest["links"])
        )
    if len(sections) == 1:
        sections.append("Nothing notable: no topics, decisions, questions, tasks or links.")
    return "\n\n".join(sections)


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


def _add_cost(composed: _Composed, completion: Completion, grok: GrokClient) -> None:
    usage = completion.usage or Usage()
    composed.cost_ticks += grok.prices.cost_ticks(completion.model or composed.model, usage)
    total = composed.usage
    composed.usage = Usage(
        prompt_tokens=total.prompt_tokens + usage.prompt_tokens,
        completion_tokens=total.completion_tokens + usage.completion_tokens,
        reasoning_tokens=total.reasoning_tokens + usage.reasoning_tokens,
        cached_tokens=total.cached_tokens + usage.cached_tokens,
        total_tokens=total.total_tokens + usage.total_tokens,
    )
    composed.model = completion.model or composed.model


# -- small helpers -------------------------------------------------------------------------------

_MENTION = re.compile(r"^<#([A-Za-z0-9]+)(?:\|[^>]*)?>$")


def _arguments(incoming: Incoming) -> tuple[dict[str, str], builtins.list[str]]:
    """Options (`key:value` words for schedule, channel, id and action) and the remaining words."""
    command = incoming.command
    options = {k.lower(): v for k, v in (command.options if command else {}).items()}
    words: builtins.list[str] = []
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


def _in_workspace(place: Place) -> builtins.list[ColumnElement[bool]]:
    return [col(DigestSchedule.platform) == place.platform, col(DigestSchedule.workspace) == place.workspace]


def _info(row: DigestSchedule) -> DigestInfo:
    assert row.id is not None
    return DigestInfo(
        id=row.id,
        place=Place(row.platform, row.workspace, row.post_channel),
        channel=row.channel,
        schedule=Schedule(row.cron_expr, row.timezone),
        next_run_at=row.next_run_at,
        since=row.last_run_at,
        post_when_empty=row.post_when_empty,
        created_by=row.created_by,
    )


def _local(moment: datetime, timezone: str) -> str:
    return f"{moment.astimezone(ZoneInfo(timezone)):%a %d %b %H:%M}"
