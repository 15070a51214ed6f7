"""Digests on SQLite and PostgreSQL: the command, slot claims, structured runs in parts, failures that
cost nothing, empty periods, missed slots after downtime, crashed runs and racing instances."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import jsonschema
import pytest
from sqlalchemy import update
from sqlalchemy.exc import OperationalError

from bot.db import Sessions, create_engine, session_factory
from bot.digests import Digests
from bot.digests.command import USAGE_TEXT, DigestDesk, answer
from bot.digests.compose import DIGEST_SCHEMA, merge, render
from bot.digests.making import DigestOutcome
from bot.digests.recurrence import Schedule
from bot.digests.store import DigestInfo, DigestStore, Lease
from bot.errors import BadInput, PermissionDenied
from bot.grok import GrokClient
from bot.jobs import Jobs, Notices, heartbeats
from bot.platform import Author, ChannelMessage, Command, Incoming, Place
from bot.settings import SettingsError, load_settings
from bot.tables import DigestRun
from tests.bot.jobs_env import (
    Clock,
    Crash,
    SignallingPlatform,
    Timeline,
    counters,
    digest_runs,
    digest_schedules,
    ledger,
    make_quotas,
    timed_jobs,
)
from tests.fakes.platform import FakePlatform
from tests.fakes.xai import FakeXAI, ScriptedReply, fake_xai, grok  # noqa: F401

HERE = Place("slack", "T1", "C1")
ADA = Author("U1", "ada")
BEN = Author("U2", "ben")
BOT = Author("B1", "grokbot", is_bot=True)
# Daily 09:00 UTC digests; the clock starts at Thursday 26 Nov 2026, 12:00.
SLOT = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
PREVIOUS = SLOT - timedelta(days=1)


def digest_json(*, n: int = 0, **overrides: Any) -> str:
    value: dict[str, Any] = {
        "topics": [{"title": "Release", "summary": f"Shipping 2.{n} on Friday."}],
        "decisions": ["Ship on Friday"],
        "open_questions": [f"Who writes the notes for 2.{n}?"],
        "action_items": [{"task": "Tag the release", "owner": "ada"}, {"task": "Update docs", "owner": None}],
        "links": [{"url": "https://example.com/changelog", "title": "Changelog"}],
    }
    value.update(overrides)
    return json.dumps(value)


def history(count: int, *, start: datetime = PREVIOUS + timedelta(minutes=1)) -> list[ChannelMessage]:
    messages = []
    for i in range(count):
        author = (ADA, BEN)[i % 2]
        text = f"message {i}: " + ("let's ship on Friday " if i % 3 else "see https://example.com/changelog ")
        messages.append(ChannelMessage(f"h{i}", author, text * 3, start + timedelta(minutes=i)))
    return messages


def make_digests(
    sessions: Sessions,
    grok: GrokClient,
    platform: FakePlatform,
    clock: Clock,
    *,
    instance: str = "a",
    **kwargs: Any,
) -> Digests:
    return Digests(
        sessions=sessions,
        grok=grok,
        quotas=make_quotas(sessions, clock),
        platforms={"slack": platform},
        clock=clock,
        instance_id=instance,
        timezone="UTC",
        **kwargs,
    )


def said(text: str, author: Author = ADA, place: Place = HERE) -> Incoming:
    return Incoming(place=place, author=author, command=Command(name="digest", text=text))


async def test_add_list_remove_with_permissions(sessions: Sessions, grok: GrokClient) -> None:
    clock, platform = Clock(), FakePlatform(name="slack")
    digests = make_digests(sessions, grok, platform, clock)
    info = await digests.add(HERE, schedule="weekdays 09:00 tz:Europe/Berlin", channel=None, created_by="U1")
    assert (info.channel, info.place, info.schedule.cron) == ("C1", HERE, "0 9 * * 1-5")
    assert info.next_run_at == datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
    assert info.description == "weekdays at 09:00 (Europe/Berlin)"
    with pytest.raises(PermissionDenied):
        await digests.add(HERE, schedule="09:00", channel="C-private", created_by="U1")
    other = await digests.add(HERE, schedule="09:00", channel="C2", created_by="U9", is_admin=True)
    elsewhere = Place("slack", "T2", "C1")
    await digests.add(elsewhere, schedule="09:00", channel=None, created_by="U1")
    assert [d.id for d in await digests.workspace_digests(HERE)] == [info.id, other.id]
    with pytest.raises(PermissionDenied):
        await digests.remove(HERE, info.id, by="U2")
    assert not await digests.remove(elsewhere, info.id, by="U1")  # another workspace's id
    assert await digests.remove(HERE, info.id, by="U1")
    assert await digests.remove(HERE, other.id, by="U1", is_admin=True)
    assert not await digests.remove(HERE, info.id, by="U1")
    assert await digests.workspace_digests(HERE) == []


async def test_the_digest_command(sessions: Sessions, grok: GrokClient) -> None:
    clock, platform = Clock(), FakePlatform(name="slack")
    digests = make_digests(sessions, grok, platform, clock)
    added = await digests.command(
        said("add schedule:weekdays 17:30 tz:Europe/Berlin"), platform, is_admin=False
    )
    assert added.startswith("Digest #1 added: weekdays at 17:30 (Europe/Berlin), summarising this channel")
    assert "Next run: Thu 26 Nov 17:30" in added
    listed = await digests.command(said("list"), platform, is_admin=False)
    assert listed.startswith("• #1: weekdays at 17:30 (Europe/Berlin)")
    options = Incoming(
        place=HERE,
        author=ADA,
        command=Command("digest", {"schedule": "0 8 * * 0", "channel": "<#C7|random>"}, "add"),
    )
    with pytest.raises(PermissionDenied):
        await digests.command(options, platform, is_admin=False)
    assert "summarising <#C7>" in await digests.command(options, platform, is_admin=True)
    assert (await digests.workspace_digests(HERE))[1].schedule.describe() == "Sun at 08:00 (UTC)"
    with pytest.raises(BadInput) as bad:
        await digests.command(said("add schedule:sometimes"), platform, is_admin=False)
    assert "weekdays 17:30" in str(bad.value) and "0 or 7 = Sunday" in str(bad.value)
    assert await digests.command(said("remove id:1"), platform, is_admin=False) == "Digest #1 removed."
    assert "no digest #1" in await digests.command(said("remove 1"), platform, is_admin=False)
    with pytest.raises(BadInput):
        await digests.command(said("remove"), platform, is_admin=False)
    with pytest.raises(BadInput) as unknown:
        await digests.command(said("explode"), platform, is_admin=False)
    assert "digest add schedule:" in str(unknown.value)


class RecordingDesk:
    """A DigestDesk that records what the `digest` command asks of it."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    async def add(
        self, place: Place, *, schedule: str, channel: str | None, created_by: str, is_admin: bool = False
    ) -> DigestInfo:
        self.calls.append(("add", dict(schedule=schedule, channel=channel, by=created_by, admin=is_admin)))
        daily = Schedule("0 9 * * *", "UTC")
        return DigestInfo(7, place, channel or place.channel, daily, SLOT, None, True, created_by)

    async def workspace_digests(self, place: Place) -> list[DigestInfo]:
        self.calls.append(("list", dict(place=place)))
        return []

    async def remove(self, place: Place, digest_id: int, *, by: str, is_admin: bool = False) -> bool:
        self.calls.append(("remove", dict(digest_id=digest_id, by=by, admin=is_admin)))
        return False

    async def run_now(
        self, place: Place, channel: str | None = None, *, is_admin: bool = False
    ) -> DigestOutcome:
        self.calls.append(("now", dict(channel=channel, admin=is_admin)))
        return DigestOutcome("failed", 0, 0)


async def test_the_command_reads_words_and_options_for_any_digest_desk() -> None:
    desk: DigestDesk = RecordingDesk()
    options = {"action": "add", "channel": "<#C7|random>"}
    add = Incoming(place=HERE, author=BEN, command=Command("digest", options, "mon 09:00 tz:Europe/Berlin"))
    assert await answer(desk, add, is_admin=True) == (
        "Digest #7 added: every day at 09:00 (UTC), summarising <#C7>, posted here. "
        "Next run: Fri 27 Nov 09:00."
    )
    assert await answer(desk, said(""), is_admin=False) == "No digests in this workspace yet. " + USAGE_TEXT
    assert "no digest #12" in await answer(desk, said("remove #12"), is_admin=False)
    failed = await answer(desk, said("now channel:#C9"), is_admin=True)
    assert failed == "The digest could not be made (see above); nothing was charged."
    assert desk.calls == [
        ("add", dict(schedule="mon 09:00 tz:Europe/Berlin", channel="C7", by="U2", admin=True)),
        ("list", dict(place=HERE)),  # a bare `digest` lists
        ("remove", dict(digest_id=12, by="U1", admin=False)),
        ("now", dict(channel="C9", admin=True)),
    ]


async def test_a_digest_of_300_messages_in_parts(
    sessions: Sessions, fake_xai: FakeXAI, grok: GrokClient
) -> None:
    clock, platform = Clock(), FakePlatform(name="slack")
    digests = make_digests(sessions, grok, platform, clock, chunk_chars=14_000)
    await digests.add(HERE, schedule="09:00", channel=None, created_by="U1")
    platform.history = [
        *history(300),
        ChannelMessage("bot1", BOT, "yesterday's digest", PREVIOUS + timedelta(minutes=5)),
        ChannelMessage("late", BEN, "after the slot", SLOT + timedelta(minutes=1)),
    ]
    for n in range(3):
        fake_xai.queue_reply(ScriptedReply(text=digest_json(n=n), cost_ticks=1_000 + n))
    clock.now = SLOT + timedelta(seconds=20)
    assert await digests.tick() == 1

    chats = fake_xai.chat_requests()
    assert len(chats) == 3  # 300 messages, ~39k transcript characters, 14k per part
    for body in (c.json for c in chats):
        assert body["response_format"]["type"] == "json_schema"
        assert body["response_format"]["json_schema"]["strict"] is True
        assert body["response_format"]["json_schema"]["schema"] == DIGEST_SCHEMA
    transcript = "\n".join(c.json["messages"][1]["content"] for c in chats)
    assert "message 0:" in transcript and "message 299:" in transcript
    assert "yesterday's digest" not in transcript and "after the slot" not in transcript
    assert "(part 3 of 3)" in transcript

    [post] = platform.messages
    assert post.place == HERE
    text = post.text
    assert text.startswith("📋 **Digest** · Thu 26 Nov 09:00 – Fri 27 Nov 09:00 (UTC) · 300 messages")
    assert text.count("**Release**") == 1  # the same topic in three parts is merged
    assert "Shipping 2.0 on Friday. Shipping 2.1 on Friday. Shipping 2.2 on Friday." in text
    assert text.count("Ship on Friday") == 1
    assert all(f"Who writes the notes for 2.{n}?" in text for n in range(3))
    assert "• Tag the release — ada" in text and "• Update docs — no owner yet" in text
    assert text.count("[Changelog](https://example.com/changelog)") == 1

    [run] = await digest_runs(sessions)
    assert (run.status, run.message_count, run.cost_ticks, run.slot) == ("posted", 300, 3_003, SLOT)
    [event] = await ledger(sessions)
    assert (event.kind, event.user_id, event.workspace, event.cost_ticks) == ("digest", "", "T1", 3_003)
    [schedule] = await digest_schedules(sessions)
    assert (schedule.last_run_at, schedule.next_run_at) == (SLOT, SLOT + timedelta(days=1))
    assert await digests.tick() == 0  # the slot is taken


async def test_a_schema_invalid_reply_fails_the_run_tells_the_channel_and_charges_nothing(
    sessions: Sessions, fake_xai: FakeXAI, grok: GrokClient
) -> None:
    clock, platform = Clock(), FakePlatform(name="slack")
    digests = make_digests(sessions, grok, platform, clock, chunk_chars=14_000)
    await digests.add(HERE, schedule="09:00", channel=None, created_by="U1")
    platform.history = history(300)
    fake_xai.queue_reply(ScriptedReply(text=digest_json()))  # part 1 is fine...
    fake_xai.queue_reply(ScriptedReply(text=digest_json(topics="none")))  # ...part 2 is not
    clock.now = SLOT
    await digests.tick()

    assert len(fake_xai.chat_requests()) == 2  # stopped at the invalid part
    [notice] = platform.messages
    assert notice.text.startswith(
        "⚠️ The digest could not be made. Grok's reply did not have the expected shape"
    )
    assert "Nothing was charged" in notice.text and "included in the next digest" in notice.text
    [run] = await digest_runs(sessions)
    assert (run.status, run.cost_ticks) == ("failed", 0)
    assert run.error is not None and "topics" in run.error
    assert await ledger(sessions) == [] and await counters(sessions) == {}
    # The period stays open: the next run covers both days.
    [schedule] = await digest_schedules(sessions)
    assert schedule.last_run_at == PREVIOUS
    fake_xai.default_reply = ScriptedReply(text=digest_json())
    clock.now = SLOT + timedelta(days=1)
    await digests.tick()
    assert platform.messages[-1].text.startswith(
        "📋 **Digest** · Thu 26 Nov 09:00 – Sat 28 Nov 09:00 (UTC) · 300 messages"
    )
    assert len(await ledger(sessions)) == 1


@pytest.mark.parametrize("post_when_empty", [True, False])
async def test_an_empty_period(
    sessions: Sessions, fake_xai: FakeXAI, grok: GrokClient, post_when_empty: bool
) -> None:
    clock, platform = Clock(), FakePlatform(name="slack")
    digests = make_digests(sessions, grok, platform, clock)
    await digests.add(HERE, schedule="09:00", channel=None, created_by="U1", post_when_empty=post_when_empty)
    platform.history = [ChannelMessage("bot1", BOT, "only the bot spoke", SLOT - timedelta(hours=1))]
    clock.now = SLOT
    assert await digests.tick() == 1
    expected = (
        ["📋 Nothing new between Thu 26 Nov 09:00 – Fri 27 Nov 09:00 (UTC)."] if post_when_empty else []
    )
    assert [m.text for m in platform.messages] == expected
    assert fake_xai.chat_requests() == []
    [run] = await digest_runs(sessions)
    assert (run.status, run.message_count, run.cost_ticks) == ("empty", 0, 0)
    assert await ledger(sessions) == []


async def test_missed_slots_after_downtime_run_once(
    sessions: Sessions, fake_xai: FakeXAI, grok: GrokClient
) -> None:
    clock, platform = Clock(), FakePlatform(name="slack")
    digests = make_digests(sessions, grok, platform, clock)
    await digests.add(HERE, schedule="09:00", channel=None, created_by="U1")
    clock.now = SLOT + timedelta(days=4, hours=3)  # down from Friday to Tuesday noon
    assert await digests.tick() == 1
    assert await digests.tick() == 0
    [run] = await digest_runs(sessions)
    assert run.slot == SLOT + timedelta(days=4)  # the latest missed slot, covering the whole gap
    assert [m.text for m in platform.messages] == [
        "📋 Nothing new between Thu 26 Nov 09:00 – Tue 01 Dec 09:00 (UTC)."
    ]
    [schedule] = await digest_schedules(sessions)
    assert schedule.next_run_at == SLOT + timedelta(days=5)


class CrashingPlatform(FakePlatform):
    crash_in = ""  # "history": before anything is posted; "post": right after the post went out

    async def channel_history(
        self, place: Place, *, since: datetime, until: datetime, limit: int = 2000
    ) -> Any:
        if self.crash_in == "history":
            self.crash_in = ""
            raise Crash("history")
        return await super().channel_history(place, since=since, until=until, limit=limit)

    async def post_text(self, place: Place, text: str, *, private_to: str = "") -> str:
        message_id = await super().post_text(place, text, private_to=private_to)
        if self.crash_in == "post":
            self.crash_in = ""
            raise Crash("post")
        return message_id


@pytest.mark.parametrize(("crash_in", "posts", "status"), [("history", 1, "posted"), ("post", 1, "failed")])
async def test_a_crashed_run_is_taken_over_after_its_lease_and_never_posted_twice(
    sessions: Sessions, fake_xai: FakeXAI, grok: GrokClient, crash_in: str, posts: int, status: str
) -> None:
    clock, platform = Clock(), CrashingPlatform(name="slack")
    a = make_digests(sessions, grok, platform, clock, instance="a")
    await a.add(HERE, schedule="09:00", channel=None, created_by="U1")
    platform.history = history(5)
    fake_xai.default_reply = ScriptedReply(text=digest_json())
    platform.crash_in = crash_in
    clock.now = SLOT
    with pytest.raises(Crash):
        await a.tick()
    b = make_digests(sessions, grok, platform, clock, instance="b")
    clock.advance(minutes=4)
    assert await b.tick() == 0  # a's lease (5 min) still holds
    assert [r.status for r in await digest_runs(sessions)] == [
        "running" if crash_in == "history" else "posting"
    ]
    clock.advance(minutes=2)
    await b.tick()
    assert len(platform.messages) == posts
    [run] = await digest_runs(sessions)
    assert run.status == status
    [schedule] = await digest_schedules(sessions)
    assert schedule.last_run_at == SLOT  # either way the period counts as done


class PagedPlatform(FakePlatform):
    """Reads a channel one page a minute, as Slack allows some apps (platforms.md S4): each page
    moves the clock a minute, then calls `on_page`."""

    pages = 12
    clock: Clock | None = None
    on_page: Callable[[int], Awaitable[None]] | None = None

    async def channel_history(
        self, place: Place, *, since: datetime, until: datetime, limit: int = 2000
    ) -> Any:
        on_page, self.on_page = self.on_page, None  # only the first reader is slow
        for page in range(self.pages if on_page else 0):
            assert self.clock is not None
            self.clock.advance(minutes=1)
            await on_page(page)
        return await super().channel_history(place, since=since, until=until, limit=limit)


class Renewals:
    """The pause between two lease renewals, ended by the test (an injected sleep): `renew()` lets
    the run renew its lease once and returns when that renewal is over and the run pauses again."""

    def __init__(self) -> None:
        self._state = asyncio.Condition()
        self._pauses = 0  # pauses begun
        self._ended = 0  # pauses ended: by renew(), or cancelled when the read was over first

    async def __call__(self, seconds: float) -> None:
        async with self._state:
            self._pauses += 1
            self._state.notify_all()
            try:
                await self._state.wait_for(lambda: self._ended >= self._pauses)
            finally:
                self._ended = self._pauses

    async def renew(self) -> None:
        async with self._state:
            await self._state.wait_for(lambda: self._pauses > self._ended)
            self._ended += 1
            self._state.notify_all()
            await self._state.wait_for(lambda: self._pauses > self._ended)


async def paged_digest(
    sessions: Sessions, grok: GrokClient, fake_xai: FakeXAI, **kwargs: Any
) -> tuple[Clock, PagedPlatform, Digests, Renewals]:
    """A daily digest due now, of 5 messages read a page a minute, with renewals paced by the test."""
    clock, platform, renewals = Clock(), PagedPlatform(name="slack"), Renewals()
    digests = make_digests(sessions, grok, platform, clock, instance="a", sleep=renewals, **kwargs)
    await digests.add(HERE, schedule="09:00", channel=None, created_by="U1")
    platform.history = history(5)
    platform.clock = clock
    fake_xai.default_reply = ScriptedReply(text=digest_json())
    clock.now = SLOT
    return clock, platform, digests, renewals


async def test_a_slow_history_read_keeps_its_lease_and_is_not_taken_over(
    sessions: Sessions, fake_xai: FakeXAI, grok: GrokClient
) -> None:
    clock, platform, a, renewals = await paged_digest(sessions, grok, fake_xai)
    b = make_digests(sessions, grok, platform, clock, instance="b")
    b_ran: list[int] = []
    leases: list[timedelta] = []

    async def on_page(page: int) -> None:
        # A page takes a minute of the clock, and a's run renews its lease meanwhile.
        await renewals.renew()
        [run] = await digest_runs(sessions)
        assert run.lease_until is not None
        leases.append(run.lease_until.replace(tzinfo=UTC) - clock.now)
        if page == 7:  # 7 minutes in: past a 5-minute lease that was never renewed
            b_ran.append(await b.tick())

    platform.on_page = on_page
    assert await a.tick() == 1
    assert b_ran == [0]
    assert leases == [timedelta(minutes=5)] * platform.pages  # renewed a whole lease ahead each time
    assert len(platform.messages) == 1
    [run] = await digest_runs(sessions)
    assert (run.status, run.lease_owner, run.message_count) == ("posted", None, 5)


async def test_a_run_whose_lease_is_lost_while_reading_stops_and_posts_nothing(
    sessions: Sessions, fake_xai: FakeXAI, grok: GrokClient
) -> None:
    _, platform, a, renewals = await paged_digest(sessions, grok, fake_xai)
    pages: list[int] = []

    async def on_page(page: int) -> None:
        pages.append(page)
        if page == 1:  # another instance holds the run now (say a's renewals stalled)
            async with sessions.begin() as session:
                await session.exec(update(DigestRun).values(lease_owner="b"))
            await renewals.renew()  # the renewal finds the run lost and stops the read here

    platform.on_page = on_page
    assert await a.tick() == 0
    assert pages == [0, 1]  # the read was stopped at the first renewal that failed
    assert platform.messages == [] and fake_xai.chat_requests() == []
    assert await ledger(sessions) == []


class BusyOnce(DigestStore):
    """Digest SQL whose first lease renewal meets a database busy for a moment."""

    def __init__(self, sessions: Sessions) -> None:
        super().__init__(sessions)
        self.failures: list[str] = []
        self.renewed = 0

    async def renew(self, run_id: int, lease: Lease) -> None:
        if not self.failures:
            self.failures.append("database is locked")
            raise OperationalError("UPDATE digest_run", {}, sqlite3.OperationalError("database is locked"))
        await super().renew(run_id, lease)
        self.renewed += 1


async def test_a_renewal_that_fails_once_does_not_stop_the_run(
    sessions: Sessions, fake_xai: FakeXAI, grok: GrokClient
) -> None:
    store = BusyOnce(sessions)
    _, platform, a, renewals = await paged_digest(sessions, grok, fake_xai, store=store)
    platform.pages = 3

    async def on_page(page: int) -> None:
        await renewals.renew()

    platform.on_page = on_page
    assert await a.tick() == 1
    assert store.failures == ["database is locked"]
    assert store.renewed == 2  # the renewals after the failed one went on
    assert len(platform.messages) == 1
    [run] = await digest_runs(sessions)
    assert run.status == "posted"


async def test_a_read_that_never_ends_fails_the_run_at_its_deadline(
    sessions: Sessions, fake_xai: FakeXAI, grok: GrokClient
) -> None:
    class Hung(FakePlatform):
        async def channel_history(
            self, place: Place, *, since: datetime, until: datetime, limit: int = 2000
        ) -> Any:
            await asyncio.Event().wait()

    clock, platform = Clock(), Hung(name="slack")
    a = make_digests(sessions, grok, platform, clock, instance="a", renew_every=0.01, deadline=0.2)
    await a.add(HERE, schedule="09:00", channel=None, created_by="U1")
    clock.now = SLOT
    await asyncio.wait_for(a.tick(), 10)
    [notice] = [m.text for m in platform.messages]
    assert "took longer than 0.2 s" in notice and "next digest" in notice
    [run] = await digest_runs(sessions)
    assert run.status == "failed"
    assert fake_xai.chat_requests() == [] and await ledger(sessions) == []


async def test_digest_now_posts_the_last_day_and_charges_the_workspace(
    sessions: Sessions, fake_xai: FakeXAI, grok: GrokClient
) -> None:
    clock, platform = Clock(), FakePlatform(name="slack")
    digests = make_digests(sessions, grok, platform, clock)
    platform.history = history(10, start=clock.now - timedelta(hours=3))
    fake_xai.queue_reply(ScriptedReply(text=digest_json(), cost_ticks=777))
    answer = await digests.command(said("now"), platform, is_admin=False)
    assert answer == "Digest of the last 24 hours: 10 message(s) read."
    assert platform.messages[0].text.startswith("📋 **Digest** · Wed 25 Nov 12:00 – Thu 26 Nov 12:00 (UTC)")
    [event] = await ledger(sessions)
    assert (event.kind, event.user_id, event.cost_ticks) == ("digest", "", 777)
    assert await digest_runs(sessions) == []
    with pytest.raises(PermissionDenied):
        await digests.command(said("now channel:C9"), platform, is_admin=False)


def test_the_schema_follows_xais_rules() -> None:
    jsonschema.Draft202012Validator.check_schema(DIGEST_SCHEMA)

    def objects(schema: Any) -> list[dict[str, Any]]:
        found = []
        if isinstance(schema, dict):
            if schema.get("type") == "object":
                found.append(schema)
            for value in schema.values():
                found += objects(value)
        return found

    for obj in objects(DIGEST_SCHEMA):
        assert obj["additionalProperties"] is False
        assert sorted(obj["required"]) == sorted(obj["properties"])
    text = json.dumps(DIGEST_SCHEMA)
    for unsupported in ("minContains", "maxContains", '"not"', '"if"', "$ref", "patternProperties"):
        assert unsupported not in text
    jsonschema.validate(json.loads(digest_json()), DIGEST_SCHEMA)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**json.loads(digest_json()), "extra": 1}, DIGEST_SCHEMA)


def test_merge_and_render() -> None:
    one = json.loads(digest_json(n=1))
    two = json.loads(digest_json(n=2, links=[], decisions=["ship on friday", "Freeze main"]))
    merged = merge([one, two])
    assert [t["title"] for t in merged["topics"]] == ["Release"]
    assert merged["decisions"] == ["Ship on Friday", "Freeze main"]
    assert len(merged["action_items"]) == 2 and len(merged["links"]) == 1
    text = render(merged, header="H")
    assert text.split("\n\n")[0] == "H"
    assert "**Open questions**\n• Who writes the notes for 2.1?\n• Who writes the notes for 2.2?" in text
    empty = {name: [] for name in ("topics", "decisions", "open_questions", "action_items", "links")}
    assert (
        render(empty, header="H") == "H\n\nNothing notable: no topics, decisions, questions, tasks or links."
    )


async def _race(instances: Sequence[Digests], clock: Clock, hours: int) -> None:
    for _ in range(hours):
        clock.advance(hours=1)
        await asyncio.gather(*(d.tick() for d in instances))


async def test_three_instances_race_over_50_slots_posting_each_once(
    db_url: str, sessions: Sessions, fake_xai: FakeXAI, grok: GrokClient
) -> None:
    clock = Clock(datetime(2026, 11, 26, 12, 0, 30, tzinfo=UTC))
    fake_xai.default_reply = ScriptedReply(text=digest_json(), cost_ticks=5)
    setup = make_digests(sessions, grok, FakePlatform(name="slack"), clock)
    for n in range(10):
        await setup.add(Place("slack", "T1", f"C{n}"), schedule="0 * * * *", channel=None, created_by="U1")
    engines = [create_engine(db_url) for _ in range(3)]
    platforms = [FakePlatform(name="slack", history=history(3, start=clock.now)) for _ in range(3)]
    try:
        instances = [
            make_digests(session_factory(e), grok, p, clock, instance=f"i{n}")
            for n, (e, p) in enumerate(zip(engines, platforms, strict=True))
        ]
        await _race(instances, clock, hours=5)
    finally:
        for engine in engines:
            await engine.dispose()
    posts = [(m.place.channel, m.text.splitlines()[0]) for p in platforms for m in p.messages]
    assert len(posts) == 50 and len(set(posts)) == 50  # 10 digests x 5 hourly slots, each once
    assert all(p.messages for p in platforms)  # the slots were really shared
    runs = await digest_runs(sessions)
    assert len(runs) == 50 and {r.status for r in runs} <= {"posted", "empty"}
    assert len(await ledger(sessions)) == sum(r.status == "posted" for r in runs)


async def test_the_timer_ticks_digests(sessions: Sessions, fake_xai: FakeXAI, grok: GrokClient) -> None:
    clock, platform = Clock(), SignallingPlatform(name="slack")
    digests = make_digests(sessions, grok, platform, clock)
    await digests.add(HERE, schedule="09:00", channel=None, created_by="U1")
    clock.now = SLOT
    jobs = Jobs(sessions=sessions, deferrals=None, digests=digests, clock=clock, instance_id="w1")
    jobs.start()
    try:
        async with asyncio.timeout(5):
            await platform.posted.wait()
    finally:
        await jobs.stop()
    assert len(platform.messages) == 1
    assert [(i, c) for i, c, _ in await heartbeats(sessions)] == [("w1", "digests")]


# -- digests as often as an operator allows -----------------------------------------------------


async def test_a_per_minute_schedule_needs_the_operators_leave(
    sessions: Sessions, grok: GrokClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    with monkeypatch.context() as patch, pytest.raises(SettingsError) as too_low:
        patch.setenv("GROKBOT_DIGEST_MIN_INTERVAL_S", "59")
        load_settings(_env_file=None)
    assert "GROKBOT_DIGEST_MIN_INTERVAL_S" in str(too_low.value) and "60 or more" in str(too_low.value)
    clock, platform = Clock(), FakePlatform(name="slack")
    with pytest.raises(BadInput) as refused:
        await make_digests(sessions, grok, platform, clock).add(
            HERE, schedule="* * * * *", channel=None, created_by="U1"
        )
    assert "at most hourly" in str(refused.value)
    assert "GROKBOT_DIGEST_MIN_INTERVAL_S = 3600 s" in str(refused.value)
    allowed = make_digests(sessions, grok, platform, clock, min_interval=timedelta(seconds=60))
    info = await allowed.add(HERE, schedule="* * * * *", channel=None, created_by="U1")
    assert info.next_run_at == clock.now + timedelta(minutes=1)
    with pytest.raises(BadInput) as too_often:  # the setting is the floor, not a suggestion
        await make_digests(sessions, grok, platform, clock, min_interval=timedelta(minutes=5)).add(
            HERE, schedule="*/2 * * * *", channel=None, created_by="U1"
        )
    assert "at most every 5 minutes here (GROKBOT_DIGEST_MIN_INTERVAL_S = 300 s)" in str(too_often.value)


async def test_a_per_minute_digest_across_two_instances_is_posted_once_per_slot(
    db_url: str, sessions: Sessions, fake_xai: FakeXAI, grok: GrokClient
) -> None:
    """Two instances (their own engines) wake at each slot and race for it: one posts it. On
    PostgreSQL the other instance hears of the new schedule at once (NOTIFY)."""
    clock, every_minute = Clock(), timedelta(seconds=60)
    timeline = Timeline(clock)
    engines = [create_engine(db_url) for _ in range(2)]
    platforms = [FakePlatform(name="slack") for _ in range(2)]
    instances = [
        make_digests(session_factory(e), grok, p, clock, instance=f"i{n}", min_interval=every_minute)
        for n, (e, p) in enumerate(zip(engines, platforms, strict=True))
    ]
    notices = [Notices(e, instance_id=f"i{n}") for n, e in enumerate(engines)]
    jobs = [
        timed_jobs(session_factory(e), timeline, digests=d, instance=f"i{n}", notices=heard)
        for n, (d, e, heard) in enumerate(zip(instances, engines, notices, strict=True))
    ]
    try:
        for job, heard in zip(jobs, notices, strict=True):
            heard.start()
            await heard.listening()
            job.start()
        await timeline.until_paused(4)  # each instance's digest alarm and heartbeat
        info = await instances[0].add(HERE, schedule="* * * * *", channel=None, created_by="U1")
        heard_by = 2 if db_url.startswith("postgresql") else 1  # i0 is rung in-process, i1 by NOTIFY
        await timeline.until_paused(4 + heard_by)  # rung: they looked again
        assert pause_ends(timeline).count(info.next_run_at) == heard_by  # and sleep until the first slot
        for _ in range(5 * 4):  # five minutes, in steps of 15 s
            await timeline.advance(15)
    finally:
        for job in jobs:
            await job.stop()
        for engine in engines:
            await engine.dispose()
    posts = [m.text for p in platforms for m in p.messages]
    slots = [clock.now.replace(second=0) - timedelta(minutes=m) for m in range(4, -1, -1)]
    assert sorted(posts) == sorted(
        f"📋 Nothing new between {local(slot - every_minute)} – {local(slot)} (UTC)." for slot in slots
    )
    runs = await digest_runs(sessions)
    assert [r.slot for r in runs] == slots and {r.status for r in runs} == {"empty"}


async def test_the_digest_alarm_sleeps_until_the_next_slot_and_hears_new_schedules(
    sessions: Sessions, fake_xai: FakeXAI, grok: GrokClient
) -> None:
    clock, platform = Clock(), SignallingPlatform(name="slack")
    digests = make_digests(sessions, grok, platform, clock)
    timeline = Timeline(clock)
    jobs = timed_jobs(sessions, timeline, digests=digests, instance="w1")
    jobs.start()
    try:
        await timeline.until_paused(2)
        assert pause_ends(timeline) == [clock.now + timedelta(seconds=300)]  # idle: the safety look
        info = await digests.add(HERE, schedule="09:00", channel=None, created_by="U1")
        await timeline.until_paused(3)  # rung at once: it looked again
        assert pause_ends(timeline) == [clock.now + timedelta(seconds=300)]  # 09:00 is hours away
        for _ in range(21 * 12):  # to 09:00 tomorrow, in 5-minute steps
            await timeline.advance(300)
        assert clock.now == info.next_run_at and len(platform.messages) == 1
        await digests.remove(HERE, info.id, by="U1")
        await timeline.until_paused(timeline.begun + 1)  # rung again by the removal
        assert pause_ends(timeline) == [clock.now + timedelta(seconds=300)]  # nothing due any more
    finally:
        await jobs.stop()


def pause_ends(timeline: Timeline) -> list[datetime]:
    """When the pending pauses other than the heartbeat's end."""
    return sorted(end for end, _ in timeline.pauses if end - timeline.clock.now != timedelta(seconds=30))


def local(moment: datetime) -> str:
    return moment.strftime("%a %d %b %H:%M")
