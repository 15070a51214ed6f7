"""Deferred completions on SQLite and PostgreSQL: backoff, store-before-deliver, exactly-once delivery
across restarts and racing instances, expiry, and the timer: idle when nothing is due, woken by a
submit or another instance's NOTIFY, its heartbeat, and takeover of a dead instance's lease."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.db import Sessions, create_engine, session_factory
from bot.errors import PlatformError, PlatformUncertain
from bot.grok import ChatMessage, ChatRequest, GrokClient
from bot.jobs import (
    HEARTBEAT_WINDOW,
    Bell,
    Deferrals,
    DeferredRequests,
    Jobs,
    Notices,
    Pace,
    heartbeat_check,
    heartbeats,
)
from bot.jobs.deferred import INTERRUPTED_NOTE
from bot.platform import Place
from bot.quotas import Quotas, Reservation, Subject
from bot.store.conversations import conversation_for, conversation_of_message, find_conversation, recent_turns
from bot.tables import DeferredRequest
from tests.bot.jobs_env import (
    Clock,
    Crash,
    CrashingRequests,
    CrashPoint,
    SignallingPlatform,
    Statements,
    Timeline,
    counters,
    deferred_rows,
    ledger,
    make_quotas,
    reservation_states,
    run_until,
    timed_jobs,
)
from tests.fakes.platform import FakePlatform
from tests.fakes.xai import FakeXAI, ScriptedReply, fake_xai, grok  # noqa: F401

PLACE = Place("discord", "g1", "c1", "t1")
ALICE = Subject("discord", "g1", "alice")
COST = 123_456_789


def request(text: str = "why is the sky blue?") -> ChatRequest:
    return ChatRequest(model="grok-4.3", messages=(ChatMessage("user", text),), max_tokens=4000)


def deferrals(
    sessions: Sessions,
    grok: GrokClient,
    quotas: Quotas,
    platform: FakePlatform,
    clock: Clock,
    *,
    instance: str = "a",
    crash: CrashPoint | None = None,
    requests: DeferredRequests | None = None,
    **kwargs: Any,
) -> Deferrals:
    """A Deferrals over the real repository, or over one that dies at `crash`, or over `requests`."""
    if requests is None:
        requests = (
            DeferredRequests(sessions, clock=clock, instance_id=instance)
            if crash is None
            else CrashingRequests(sessions, clock=clock, instance_id=instance, crash=crash)
        )
    return Deferrals(
        requests, grok=grok, quotas=quotas, platforms={"discord": platform}, clock=clock, **kwargs
    )


P = TypeVar("P", bound=FakePlatform)


def setup(
    sessions: Sessions, grok: GrokClient, platform: P, **kwargs: Any
) -> tuple[Clock, P, Quotas, Deferrals]:
    """A clock, `platform`, quotas on that clock and a Deferrals over them (kwargs: `deferrals`'s)."""
    clock = Clock()
    quotas = make_quotas(sessions, clock)
    return clock, platform, quotas, deferrals(sessions, grok, quotas, platform, clock, **kwargs)


async def submit(
    d: Deferrals, quotas: Quotas, sessions: Sessions, clock: Clock, *, conversation: bool = True
) -> tuple[str, Reservation]:
    reservation = await quotas.reserve(ALICE, ticks=10**9)
    conv = await conversation_for(sessions, PLACE, now=clock()) if conversation else None
    rid = await d.submit(
        place=PLACE,
        user_id="alice",
        request=request(),
        reservation=reservation,
        conversation_id=None if conv is None else conv.id,
    )
    return rid, reservation


async def run_until_closed(d: Deferrals, clock: Clock, sessions: Sessions, *, rounds: int = 40) -> int:
    """Poll, advancing the clock past the longest backoff, until nothing is open; the rounds used."""
    for used in range(1, rounds + 1):
        clock.advance(seconds=31)
        await d.poll_due()
        if await d.pending_count() == 0:
            return used
    raise AssertionError(
        f"still open after {rounds} rounds: {[r.status for r in await deferred_rows(sessions)]}"
    )


def texts(platform: FakePlatform) -> list[str]:
    return [m.text for m in platform.messages]


async def test_delivered_once_after_202s_with_turn_cost_and_links(
    sessions: Sessions, fake_xai: FakeXAI, grok: GrokClient
) -> None:
    clock, platform, quotas, d = setup(sessions, grok, FakePlatform(name="discord"))
    fake_xai.queue_reply(
        ScriptedReply(text="Rayleigh scattering.", deferred_pending_polls=3, cost_ticks=COST)
    )
    rid, _ = await submit(d, quotas, sessions, clock)
    assert await d.pending_count() == 1
    assert await d.poll_due() == 0  # not due before next_poll_at (2 s)

    await run_until_closed(d, clock, sessions)

    assert texts(platform) == ["Rayleigh scattering."]
    assert platform.messages[0].place == PLACE
    gets = [r for r in fake_xai.requests if r.path.endswith(rid)]
    assert len(gets) == 4  # three 202s, one 200, nothing after
    [row] = await deferred_rows(sessions)
    assert (row.status, row.attempts, row.lease_owner) == ("delivered", 3, None)
    assert row.result_json is not None and "Rayleigh" in row.result_json
    assert await reservation_states(sessions) == ["settled"]
    [event] = await ledger(sessions)
    assert (event.kind, event.cost_ticks, event.user_id, event.xai_request_id) == (
        "deferred",
        COST,
        "alice",
        rid,
    )
    assert await counters(sessions) == {
        ("user:discord:g1:alice", "2026-11-26"): COST,
        ("user:discord:g1:alice", "2026-11"): COST,
    }
    conv = await find_conversation(sessions, PLACE)
    assert conv is not None
    [turn] = await recent_turns(sessions, conv.id)
    assert (turn.role, turn.text, turn.cost_ticks, turn.xai_request_id) == (
        "assistant",
        "Rayleigh scattering.",
        COST,
        rid,
    )
    assert turn.fingerprint == fake_xai.fingerprint and turn.model == "grok-4.3"
    linked = await conversation_of_message(
        sessions, platform="discord", channel="c1", message_id=platform.messages[0].id
    )
    assert linked is not None and linked.id == conv.id


async def test_backoff_grows_from_2_to_30_seconds(
    sessions: Sessions, fake_xai: FakeXAI, grok: GrokClient
) -> None:
    clock, platform, quotas, d = setup(sessions, grok, FakePlatform(name="discord"))
    fake_xai.queue_reply(ScriptedReply(text="late", deferred_pending_polls=7))
    await submit(d, quotas, sessions, clock)
    waits = []
    for _ in range(7):
        [row] = await deferred_rows(sessions)
        clock.now = row.next_poll_at
        assert await d.poll_due() == 1
        [after] = await deferred_rows(sessions)
        waits.append((after.next_poll_at - clock.now).total_seconds())
    assert waits == [2, 4, 8, 16, 30, 30, 30]
    assert platform.messages == []
    clock.advance(seconds=30)
    await d.poll_due()
    assert texts(platform) == ["late"]


async def test_long_answer_is_split_into_new_messages(
    sessions: Sessions, fake_xai: FakeXAI, grok: GrokClient
) -> None:
    clock, platform, quotas, d = setup(sessions, grok, FakePlatform(name="discord"))
    answer = "\n\n".join(f"Paragraph {i}: " + "word " * 80 for i in range(12))  # ~5k characters
    fake_xai.queue_reply(ScriptedReply(text=answer, deferred_pending_polls=0))
    await submit(d, quotas, sessions, clock)
    await run_until_closed(d, clock, sessions)
    assert len(platform.messages) == 3
    assert all(len(m.text) <= platform.capabilities.max_message_length for m in platform.messages)
    assert " ".join(" ".join(texts(platform)).split()) == " ".join(answer.split())
    assert [e.kind for e in platform.events] == ["post"] * 3  # new messages, never edits
    conv = await find_conversation(sessions, PLACE)
    for message in platform.messages:
        linked = await conversation_of_message(
            sessions, platform="discord", channel="c1", message_id=message.id
        )
        assert linked is not None and conv is not None and linked.id == conv.id


async def test_404_is_reported_and_the_reservation_released(
    sessions: Sessions, fake_xai: FakeXAI, grok: GrokClient
) -> None:
    clock, platform, quotas, d = setup(sessions, grok, FakePlatform(name="discord"))
    fake_xai.now = lambda: clock.now.timestamp()
    fake_xai.deferred_ttl = 60.0  # the fake forgets the job after a minute: the next GET is a 404
    fake_xai.queue_reply(ScriptedReply(text="never seen", deferred_pending_polls=100))
    await submit(d, quotas, sessions, clock)
    await run_until_closed(d, clock, sessions)

    assert len(platform.messages) == 1
    assert "lost before it could be collected" in platform.messages[0].text
    assert "Nothing was charged" in platform.messages[0].text
    [row] = await deferred_rows(sessions)
    assert (row.status, row.error) == ("expired", "lost")
    assert await reservation_states(sessions) == ["released"]
    assert await ledger(sessions) == []
    assert set((await counters(sessions)).values()) == {0}


async def test_past_24_hours_is_reported_as_expired(
    sessions: Sessions, fake_xai: FakeXAI, grok: GrokClient
) -> None:
    clock, platform, quotas, d = setup(sessions, grok, FakePlatform(name="discord"))
    fake_xai.queue_reply(ScriptedReply(text="too slow", deferred_pending_polls=10**6))
    await submit(d, quotas, sessions, clock)
    clock.advance(seconds=5)
    await d.poll_due()
    gets_before = len(fake_xai.requests)
    clock.advance(hours=24)
    await d.poll_due()
    assert len(fake_xai.requests) == gets_before  # no pointless GET past expires_at
    assert [m.text for m in platform.messages] == [
        "⌛ Your deferred question was not answered within 24 hours, so its result expired. "
        "Nothing was charged for it; please ask again."
    ]
    [row] = await deferred_rows(sessions)
    assert (row.status, row.error) == ("expired", "expired")
    assert await reservation_states(sessions) == ["released"]


async def test_rows_left_mid_delivery_by_the_previous_version_are_finished(
    sessions: Sessions, fake_xai: FakeXAI, grok: GrokClient
) -> None:
    """result_json as the version before typed envelopes wrote it, a free dict: an answer with one of
    its two parts posted after a failed post, and an expiry notice without the keys a post adds."""
    clock, platform, _, d = setup(sessions, grok, FakePlatform(name="discord"))
    conv = await conversation_for(sessions, PLACE, now=clock())
    usage = {"prompt_tokens": 10, "completion_tokens": 5, "reasoning_tokens": 0, "cached_tokens": 0}
    completion = {
        "id": "x",
        "model": "grok-4.3",
        "text": "One. Two.",
        "reasoning": "",
        "finish_reason": "stop",
    }
    answer = {
        "completion": {**completion, "usage": usage, "fingerprint": "fp"},
        "parts": ["One.", "Two."],
        "posted": ["m-earlier"],
        "final": "delivered",
        "attempting": None,
        "failures": 1,
    }
    notice = {"parts": ["The notice."], "posted": [], "final": "expired"}
    async with sessions.begin() as session:
        for n, (envelope, error) in enumerate([(answer, None), (notice, "expired")]):
            session.add(
                DeferredRequest(
                    xai_request_id=f"old{n}",
                    platform=PLACE.platform,
                    workspace=PLACE.workspace,
                    channel=PLACE.channel,
                    thread=PLACE.thread,
                    user_id="alice",
                    conversation_id=conv.id,
                    model="grok-4.3",
                    status="delivering",
                    next_poll_at=clock.now + timedelta(seconds=n),
                    result_json=json.dumps(envelope),
                    error=error,
                    created_at=clock.now,
                    expires_at=clock.now + timedelta(hours=24),
                )
            )
    clock.advance(seconds=2)
    assert await d.poll_due() == 2

    assert texts(platform) == ["Two.", "The notice."]
    assert [(r.status, r.error) for r in await deferred_rows(sessions)] == [
        ("delivered", None),
        ("expired", "expired"),
    ]
    assert [t.text for t in await recent_turns(sessions, conv.id)] == ["One. Two."]
    [event] = await ledger(sessions)
    assert (event.xai_request_id, event.prompt_tokens) == ("old0", 10)


# Where the first process dies, as a call of its repository. A one-part answer after one 202 makes
# these calls: claim (202) poll_later, claim (200) store_result, move (parts fixed), save (part 0
# marked "attempting"), the post, save (its id recorded), record_answer, link_answer, finish.
CLAIMED = CrashPoint("claim")  # lease taken, no GET yet
FETCHED = CrashPoint("store_result")  # the 200 body is stored, parts not fixed
ATTEMPTING = CrashPoint("save")  # marked "attempting", died before the platform call returned
POSTED = CrashPoint("save", after=False, nth=2)  # the platform has the message, its id unrecorded
ACCOUNTED = CrashPoint("link_answer", after=False)  # turn kept and quota settled, not linked
RECORDED = CrashPoint("link_answer")  # messages linked, not marked delivered

# (crash point, where, is the answer posted exactly once, is the "interrupted" note posted)
RESTARTS = [
    ("submitted", None, 1, False),  # nothing claimed yet
    ("claimed", CLAIMED, 1, False),
    ("fetched", FETCHED, 1, False),
    ("posted", POSTED, 1, True),  # the window
    ("accounted", ACCOUNTED, 1, False),
    ("recorded", RECORDED, 1, False),
    ("done", None, 1, False),  # marked delivered
]


@pytest.mark.parametrize(("crash_at", "crash", "answers", "note"), RESTARTS)
async def test_a_restart_after_each_step_delivers_exactly_once(
    sessions: Sessions,
    fake_xai: FakeXAI,
    grok: GrokClient,
    crash_at: str,
    crash: CrashPoint | None,
    answers: int,
    note: bool,
) -> None:
    clock, platform, quotas, first = setup(sessions, grok, FakePlatform(name="discord"), crash=crash)
    fake_xai.queue_reply(ScriptedReply(text="The answer.", deferred_pending_polls=1, cost_ticks=COST))
    rid, _ = await submit(first, quotas, sessions, clock)
    if crash_at != "submitted":
        with pytest.raises(Crash) if crash is not None else contextlib.nullcontext():
            for _ in range(5):
                clock.advance(seconds=31)
                await first.poll_due()

    # A new process (another instance id) over the same database, after the lease ran out.
    clock.advance(seconds=61)
    second = deferrals(sessions, grok, make_quotas(sessions, clock), platform, clock, instance="b")
    await run_until_closed(second, clock, sessions)

    assert texts(platform).count("The answer.") == answers
    assert texts(platform).count(INTERRUPTED_NOTE) == (1 if note else 0)
    assert len(platform.messages) == answers + (1 if note else 0)
    assert len([r for r in fake_xai.requests if r.path.endswith(rid) and r.method == "GET"]) == 2
    [row] = await deferred_rows(sessions)
    assert row.status == "delivered"
    [event] = await ledger(sessions)  # charged once
    assert event.cost_ticks == COST
    assert await reservation_states(sessions) == ["settled"]
    conv = await find_conversation(sessions, PLACE)
    assert conv is not None
    assert [t.text for t in await recent_turns(sessions, conv.id)] == ["The answer."]


async def test_a_crash_before_the_post_loses_that_part_but_never_doubles_it(
    sessions: Sessions, fake_xai: FakeXAI, grok: GrokClient
) -> None:
    """The documented window: marked "attempting", died before the platform call returned."""
    clock, platform, quotas, first = setup(sessions, grok, FakePlatform(name="discord"), crash=ATTEMPTING)
    fake_xai.queue_reply(ScriptedReply(text="The answer.", deferred_pending_polls=0))
    await submit(first, quotas, sessions, clock)
    clock.advance(seconds=3)
    with pytest.raises(Crash):
        await first.poll_due()
    second = deferrals(sessions, grok, quotas, platform, clock, instance="b")
    clock.advance(seconds=30)
    assert await second.poll_due() == 0  # the dead instance's lease still holds
    clock.advance(seconds=31)
    assert await second.poll_due() == 1
    assert texts(platform) == [INTERRUPTED_NOTE]  # told, and the answer stays in the conversation
    conv = await find_conversation(sessions, PLACE)
    assert conv is not None
    assert [t.text for t in await recent_turns(sessions, conv.id)] == ["The answer."]
    [row] = await deferred_rows(sessions)
    assert row.status == "delivered"


async def test_a_dead_instances_lease_expires_and_another_delivers(
    sessions: Sessions, fake_xai: FakeXAI, grok: GrokClient
) -> None:
    clock, platform_a, platform_b = Clock(), FakePlatform(name="discord"), FakePlatform(name="discord")
    quotas = make_quotas(sessions, clock)
    a = deferrals(sessions, grok, quotas, platform_a, clock, crash=CLAIMED)
    fake_xai.queue_reply(ScriptedReply(text="Done.", deferred_pending_polls=0))
    await submit(a, quotas, sessions, clock)
    clock.advance(seconds=2)
    with pytest.raises(Crash):
        await a.poll_due()
    [row] = await deferred_rows(sessions)
    assert (row.lease_owner, row.status) == ("a", "pending")
    b = deferrals(sessions, grok, quotas, platform_b, clock, instance="b")
    clock.advance(seconds=59)
    assert await b.poll_due() == 0
    clock.advance(seconds=2)
    assert await b.poll_due() == 1
    assert (texts(platform_a), texts(platform_b)) == ([], ["Done."])


class RefusingPlatform(FakePlatform):
    refusals = 2

    async def post_text(self, place: Place, text: str, *, private_to: str = "") -> str:
        if self.refusals:
            self.refusals -= 1
            raise PlatformError("503 from the platform")
        return await super().post_text(place, text, private_to=private_to)


async def test_a_refused_post_is_retried_later_and_delivered_once(
    sessions: Sessions, fake_xai: FakeXAI, grok: GrokClient
) -> None:
    clock, platform, quotas, d = setup(sessions, grok, RefusingPlatform(name="discord"))
    fake_xai.queue_reply(ScriptedReply(text="Eventually.", deferred_pending_polls=0))
    await submit(d, quotas, sessions, clock)
    clock.advance(seconds=2)
    await d.poll_due()
    [row] = await deferred_rows(sessions)
    assert (row.status, row.lease_owner) == ("delivering", None)
    assert row.next_poll_at > clock.now  # backs off instead of hammering the platform
    await run_until_closed(d, clock, sessions)
    assert texts(platform) == ["Eventually."]
    assert len(await ledger(sessions)) == 1


async def test_an_answer_that_can_never_be_posted_is_neither_charged_nor_remembered(
    sessions: Sessions, fake_xai: FakeXAI, grok: GrokClient
) -> None:
    clock, platform, quotas, d = setup(sessions, grok, RefusingPlatform(name="discord"))
    platform.refusals = 1_000  # the bot lost access to the channel, say
    fake_xai.queue_reply(ScriptedReply(text="Nobody reads this.", deferred_pending_polls=0, cost_ticks=COST))
    await submit(d, quotas, sessions, clock)
    await run_until_closed(d, clock, sessions)
    [row] = await deferred_rows(sessions)
    assert row.status == "failed"
    assert platform.messages == []
    assert await ledger(sessions) == []  # not charged
    assert await reservation_states(sessions) == ["released"]  # the hold given back
    conv = await find_conversation(sessions, PLACE)
    turns = [] if conv is None else await recent_turns(sessions, conv.id)
    assert "Nobody reads this." not in [t.text for t in turns]  # not in the history either


class SentButUnanswered(FakePlatform):
    """The post reaches the chat, then the connection drops before the answer comes back."""

    dropped = 1

    async def post_text(self, place: Place, text: str, *, private_to: str = "") -> str:
        message_id = await super().post_text(place, text, private_to=private_to)
        if self.dropped:
            self.dropped -= 1
            raise PlatformUncertain("no answer from the platform")
        return message_id


async def test_a_post_that_may_have_happened_is_never_posted_again(
    sessions: Sessions, fake_xai: FakeXAI, grok: GrokClient
) -> None:
    clock, platform, quotas, d = setup(sessions, grok, SentButUnanswered(name="discord"))
    fake_xai.queue_reply(ScriptedReply(text="Only once, please.", deferred_pending_polls=0))
    await submit(d, quotas, sessions, clock)
    clock.advance(seconds=2)
    await d.poll_due()
    await run_until_closed(d, clock, sessions)
    assert texts(platform).count("Only once, please.") == 1
    [row] = await deferred_rows(sessions)
    assert row.status == "delivered"


class RecordingRequests(DeferredRequests):
    """Keeps (clock time, row id) of every claim, to show that claims never overlap."""

    def __init__(
        self, sessions: Sessions, *, clock: Clock, claims: list[tuple[datetime, int]], **kwargs: Any
    ):
        super().__init__(sessions, clock=clock, **kwargs)
        self.clock, self.claims = clock, claims

    async def claim(self, *args: Any, **kwargs: Any) -> Any:
        claimed = await super().claim(*args, **kwargs)
        self.claims.extend((self.clock(), work.id) for work in claimed)
        return claimed


async def _race(instances: Sequence[Deferrals], clock: Clock, *, rounds: int = 30) -> None:
    for _ in range(rounds):
        clock.advance(seconds=31)
        await asyncio.gather(*(d.poll_due(limit=20) for d in instances))
        if await instances[0].pending_count() == 0:
            return
    raise AssertionError("the race did not finish")


async def test_three_instances_race_over_100_requests_delivering_each_once(
    db_url: str, sessions: Sessions, fake_xai: FakeXAI, grok: GrokClient
) -> None:
    clock = Clock()
    quotas = make_quotas(sessions, clock)
    rng = random.Random(7)
    submitter = deferrals(sessions, grok, quotas, FakePlatform(name="discord"), clock)
    for i in range(100):
        fake_xai.queue_reply(ScriptedReply(text=f"answer {i}", deferred_pending_polls=rng.randint(0, 3)))
        await submitter.submit(
            place=PLACE, user_id="alice", request=request(f"q{i}"), reservation=None, conversation_id=None
        )
    # Separate engines: three processes, each with its own connection pool.
    engines = [create_engine(db_url) for _ in range(3)]
    platforms = [FakePlatform(name="discord") for _ in range(3)]
    claims: list[tuple[datetime, int]] = []
    try:
        instances = [
            deferrals(
                session_factory(e),
                grok,
                make_quotas(session_factory(e), clock),
                p,
                clock,
                requests=RecordingRequests(
                    session_factory(e), clock=clock, claims=claims, instance_id=f"i{n}"
                ),
            )
            for n, (e, p) in enumerate(zip(engines, platforms, strict=True))
        ]
        await _race(instances, clock)
    finally:
        for engine in engines:
            await engine.dispose()
    posted = [m.text for p in platforms for m in p.messages]
    assert sorted(posted) == sorted(f"answer {i}" for i in range(100))
    assert all(len(p.messages) > 0 for p in platforms)  # the work was really shared
    # Within one round (one clock reading) no row was claimed twice: the claims were disjoint.
    assert len(claims) == len(set(claims)) >= 100
    assert {r.status for r in await deferred_rows(sessions)} == {"delivered"}
    assert len(await ledger(sessions)) == 100


async def test_the_timer_polls_beats_and_stops_cleanly(
    sessions: Sessions, fake_xai: FakeXAI, grok: GrokClient
) -> None:
    clock, platform, quotas, d = setup(
        sessions, grok, SignallingPlatform(name="discord"), first_poll=timedelta(0), max_poll=timedelta(0)
    )
    fake_xai.queue_reply(ScriptedReply(text="via the timer", deferred_pending_polls=2))
    await submit(d, quotas, sessions, clock)
    jobs = Jobs(
        sessions=sessions, deferrals=d, digests=None, clock=clock, instance_id="web.1", pace=Pace(least=0.01)
    )
    await run_until(jobs, platform.posted)
    assert texts(platform) == ["via the timer"]
    beats = await heartbeats(sessions)
    assert [(i, c) for i, c, _ in beats] == [("web.1", "deferred")]
    assert beats[0][2] == clock.now
    assert await heartbeat_check(sessions, instance="web.1", clock=clock)()
    assert not await heartbeat_check(sessions, instance="web.2", clock=clock)()
    clock.advance(seconds=91)
    assert not await heartbeat_check(sessions, instance="web.1", clock=clock)()
    # Stopped: a request due now stays untouched while a running timer of the same interval ticks.
    fake_xai.queue_reply(ScriptedReply(text="after the stop", deferred_pending_polls=0))
    await d.submit(place=PLACE, user_id="alice", request=request(), reservation=None, conversation_id=None)
    polls = len(fake_xai.requests)
    await another_timer_ticks(sessions, clock, interval=0.01, ticks=5)
    assert len(fake_xai.requests) == polls  # stopped: no more ticks
    assert not await heartbeat_check(sessions, instance="web.1", clock=clock)()  # nor beats
    assert texts(platform) == ["via the timer"]


@dataclass
class CountingTicker:
    """A DigestTicker that is always due and only counts its ticks."""

    wanted: int
    clock: Clock
    ticks: int = 0
    reached: asyncio.Event = field(default_factory=asyncio.Event)
    changed: Bell = field(default_factory=Bell)

    async def tick(self) -> int:
        self.ticks += 1
        if self.ticks >= self.wanted:
            self.reached.set()
        return 0

    async def next_due(self) -> datetime:
        return self.clock()


async def another_timer_ticks(sessions: Sessions, clock: Clock, *, interval: float, ticks: int) -> None:
    """Return once a second timer with `interval`, started now, has ticked `ticks` times: time in which
    a running timer with that interval would have ticked as often."""
    ticker = CountingTicker(wanted=ticks, clock=clock)
    other = Jobs(
        sessions=sessions,
        deferrals=None,
        digests=ticker,
        clock=clock,
        instance_id="other",
        pace=Pace(least=interval),
    )
    await run_until(other, ticker.reached)


# -- idle means idle: the poller sleeps until a request is due, or is rung -------------------------


async def test_an_idle_process_claims_nothing_and_beats_only_on_its_interval(
    engine: AsyncEngine, sessions: Sessions, grok: GrokClient
) -> None:
    clock, _, _, d = setup(sessions, grok, FakePlatform(name="discord"))
    timeline = Timeline(clock)
    sql = Statements.of(engine)
    jobs = timed_jobs(sessions, timeline, deferrals=d, instance="web.1")
    jobs.start()
    try:
        await timeline.until_paused(2)  # the poller looked once and the first heartbeat went out
        assert (sql.count("UPDATE deferred_request"), sql.count("INSERT INTO heartbeat")) == (0, 1)
        sql.seen.clear()
        for _ in range(14):  # 28 s, in which the 2 s poller claimed and beat 14 times each
            await timeline.advance(2)
        assert sql.seen == []
        for _ in range(300 - 14):  # to 10 minutes
            await timeline.advance(2)
        assert sql.count("UPDATE deferred_request") == 0  # not one claim
        assert sql.count("INSERT INTO heartbeat") == 20  # every 30 s
        assert sql.count("FROM deferred_request") == 10  # the safety look, once a minute
        assert len(sql.seen) == 30
        assert await heartbeat_check(sessions, instance="web.1", clock=clock)()
    finally:
        await jobs.stop()
    clock.advance(seconds=HEARTBEAT_WINDOW.total_seconds() + 1)
    assert not await heartbeat_check(sessions, instance="web.1", clock=clock)()  # stopped: not ready


@pytest.mark.parametrize("once", [False, True])
async def test_orphans_are_looked_for_after_each_beat_or_after_the_first_only(
    sessions: Sessions, grok: GrokClient, once: bool
) -> None:
    """Several instances (PostgreSQL): any may die, so each beat looks for the answers a dead one
    left. One process (SQLite): only a crashed predecessor can have left any, so the first beat
    looks, and an idle process stays idle."""
    clock, _, _, d = setup(sessions, grok, FakePlatform(name="discord"))
    timeline = Timeline(clock)
    looked: list[int] = []

    async def orphans() -> int:
        looked.append(1)
        return 0

    jobs = timed_jobs(sessions, timeline, deferrals=d, instance="web.1", orphans=orphans, orphans_once=once)
    jobs.start()
    try:
        await timeline.until_paused(2)
        for _ in range(150):  # 5 minutes: ten beats
            await timeline.advance(2)
    finally:
        await jobs.stop()
    assert len(looked) == (1 if once else 11)


async def test_a_submit_wakes_the_idle_poller_at_once(
    sessions: Sessions, fake_xai: FakeXAI, grok: GrokClient
) -> None:
    clock, platform, quotas, d = setup(
        sessions, grok, SignallingPlatform(name="discord"), first_poll=timedelta(0)
    )
    timeline = Timeline(clock)  # never advanced: no pause ends by itself
    jobs = timed_jobs(sessions, timeline, deferrals=d, instance="web.1")
    jobs.start()
    try:
        await timeline.until_paused(2)
        fake_xai.queue_reply(ScriptedReply(text="at once", deferred_pending_polls=0))
        await submit(d, quotas, sessions, clock)
        async with asyncio.timeout(5):
            await platform.posted.wait()
    finally:
        await jobs.stop()
    assert texts(platform) == ["at once"]


async def test_the_poller_sleeps_until_the_next_poll_of_a_pending_request(
    engine: AsyncEngine, sessions: Sessions, fake_xai: FakeXAI, grok: GrokClient
) -> None:
    """While a request waits for xAI it is polled when due (2 s, 4 s, 8 s ...), not every tick."""
    clock, platform, quotas, d = setup(sessions, grok, SignallingPlatform(name="discord"))
    fake_xai.queue_reply(ScriptedReply(text="in time", deferred_pending_polls=3))
    rid, _ = await submit(d, quotas, sessions, clock)
    timeline = Timeline(clock)
    sql = Statements.of(engine)
    jobs = timed_jobs(sessions, timeline, deferrals=d, instance="web.1", pace=Pace(beat=3600))
    jobs.start()
    try:
        await timeline.until_paused(2)
        for _ in range(40):  # 20 s: polls due at 2, 4, 8 and 16 s after the submit
            await timeline.advance(0.5)
    finally:
        await jobs.stop()
    assert texts(platform) == ["in time"]
    assert len([r for r in fake_xai.requests if r.path.endswith(rid)]) == 4
    assert sql.count("UPDATE deferred_request SET lease_owner") <= 5  # a claim per poll, no idle claims


async def test_a_dead_instances_lease_is_taken_over_when_it_runs_out(
    sessions: Sessions, fake_xai: FakeXAI, grok: GrokClient
) -> None:
    clock, platform_b = Clock(), SignallingPlatform(name="discord")
    quotas = make_quotas(sessions, clock)
    a = deferrals(sessions, grok, quotas, FakePlatform(name="discord"), clock, crash=CLAIMED)
    fake_xai.queue_reply(ScriptedReply(text="Taken over.", deferred_pending_polls=0))
    await submit(a, quotas, sessions, clock)
    clock.advance(seconds=2)
    with pytest.raises(Crash):
        await a.poll_due()  # leased for 60 s by a process that is gone
    b = deferrals(sessions, grok, quotas, platform_b, clock, instance="b")
    timeline = Timeline(clock)
    jobs = timed_jobs(sessions, timeline, deferrals=b, instance="b", pace=Pace(deferred_idle=3600))
    jobs.start()
    try:
        await timeline.until_paused(2)
        assert platform_b.messages == []
        # The poller's pause ends when the lease does, long before its hour-long safety look.
        [pause] = [end for end, _ in timeline.pauses if end - clock.now > timedelta(seconds=30)]
        assert pause == clock.now + timedelta(seconds=60)
        await timeline.advance(61)
        assert texts(platform_b) == ["Taken over."]
    finally:
        await jobs.stop()


@contextlib.asynccontextmanager
async def instance_b(db_url: str, grok: GrokClient, clock: Clock, **notices: Any) -> AsyncIterator[B]:
    """Instance b, a process of its own (its own engine), listening for notices (PostgreSQL) before
    its poller's first look, so that nothing is missed; its alarms pause on a Timeline."""
    engine = create_engine(db_url)
    sessions = session_factory(engine)
    heard, timeline = SignallingPlatform(name="discord"), Timeline(clock)
    listener = Notices(engine, instance_id="b", **notices)
    b = deferrals(sessions, grok, make_quotas(sessions, clock), heard, clock, instance="b")
    jobs = timed_jobs(sessions, timeline, deferrals=b, instance="b", notices=listener)
    try:
        listener.start()
        await listener.listening()
        jobs.start()
        await timeline.until_paused(2)  # its poller and heartbeat
        yield B(heard, timeline)
    finally:
        await jobs.stop()
        await engine.dispose()


@dataclass
class B:
    heard: SignallingPlatform
    timeline: Timeline


async def test_a_request_added_by_another_instance_is_heard(
    db_url: str, sessions: Sessions, fake_xai: FakeXAI, grok: GrokClient
) -> None:
    """PostgreSQL: through NOTIFY, with the safety look never due. SQLite (one process per file;
    tests share one): at the safety look."""
    clock, platform, quotas, a = setup(sessions, grok, FakePlatform(name="discord"), first_poll=timedelta(0))
    async with instance_b(db_url, grok, clock) as b:
        fake_xai.queue_reply(ScriptedReply(text="heard", deferred_pending_polls=0))
        await submit(a, quotas, sessions, clock)
        if db_url.startswith("sqlite"):
            await b.timeline.advance(60)
        async with asyncio.timeout(5):
            await b.heard.posted.wait()
    assert (texts(b.heard), texts(platform)) == (["heard"], [])


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)  # LISTEN/NOTIFY is PostgreSQL's
async def test_a_lost_listening_connection_is_opened_again(
    db_url: str, sessions: Sessions, fake_xai: FakeXAI, grok: GrokClient
) -> None:
    """The LISTEN connection is killed by the server; the listener connects again and looks
    (notices sent meanwhile were lost), so the request is still heard, with no safety look."""
    clock, _, quotas, a = setup(sessions, grok, FakePlatform(name="discord"), first_poll=timedelta(0))
    async with instance_b(db_url, grok, clock, retry=0.05) as b:
        async with sessions() as session:
            killed = await session.exec(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE "
                    "datname = current_database() AND query ILIKE 'LISTEN%' AND pid <> pg_backend_pid()"
                )
            )
            assert killed.scalars().all() == [True]
        fake_xai.queue_reply(ScriptedReply(text="heard again", deferred_pending_polls=0))
        await submit(a, quotas, sessions, clock)
        async with asyncio.timeout(5):
            await b.heard.posted.wait()
    assert texts(b.heard) == ["heard again"]
