"""Answers in flight (issue 18): the registry a stopping process settles, the open_answer rows that
let the next process close what a dead one left, and what each costs on the hot path."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.console import ConsolePlatform
from adapters.console.session import run_console
from bot import store
from bot.engine import utc_now
from bot.grok import GrokClient
from bot.inflight import close_orphans
from bot.platform import OpenMessage, Place
from bot.settings import Settings, SettingsError, load_settings
from bot.wording import INTERRUPTED
from tests.bot.engine_env import PLACE, build
from tests.fakes.xai import FakeXAI, ScriptedReply
from tests.test_shutdown import until

NOTE = INTERRUPTED.split(",")[0]


@contextmanager
def statements_on(engine: AsyncEngine, table: str) -> Iterator[list[str]]:
    """The SQL statements run on `table` while the block runs."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if table in statement:
            seen.append(statement.split(None, 1)[0].upper())

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)


async def test_an_answer_costs_one_insert_and_one_delete_of_its_open_row(
    fake_xai: FakeXAI, grok: GrokClient, sessions: Any, engine: AsyncEngine
) -> None:
    env = build(fake_xai, grok, sessions)
    fake_xai.queue_reply(ScriptedReply(text="word " * 200, chunk_chars=5, tokens_per_second=300))
    with statements_on(engine, "open_answer") as seen:
        await env.say("a long answer, please")
    assert env.platform.last.edits > 2  # several edits, yet one row written and removed
    assert seen == ["INSERT", "DELETE"]
    assert await store.open_answers(sessions) == []


async def test_settle_lets_answers_finish_within_grace_and_closes_the_rest(
    fake_xai: FakeXAI, grok: GrokClient, sessions: Any
) -> None:
    env = build(fake_xai, grok, sessions)
    quick, never = asyncio.Event(), asyncio.Event()
    text = "First words here. " + "more " * 30
    fake_xai.queue_reply(ScriptedReply(text=text, chunk_chars=6, holds=((3, quick),)))
    fake_xai.queue_reply(ScriptedReply(text=text, chunk_chars=6, holds=((3, never),)))
    places = [PLACE.in_thread("T1"), PLACE.in_thread("T2")]
    answering = [asyncio.create_task(env.say(f"question {i}", place=place)) for i, place in enumerate(places)]
    await env.platform.wait_until(lambda: sum(bool(m.text) for m in env.platform.messages) == 2)
    await env.engine.answers.inflight.written()  # each row is written in the background once it shows
    assert len(await store.open_answers(sessions)) == 2
    quick.set()
    cut = await env.engine.answers.inflight.settle(3.0)
    await asyncio.gather(*answering)
    assert cut == 1
    finished = [m for m in env.platform.messages if m.final and not m.failed]
    failed = [m for m in env.platform.messages if m.failed]
    assert [m.text for m in finished] == [text]
    (closed,) = failed
    assert closed.failed == INTERRUPTED and closed.text.startswith("First words")  # what was shown kept
    assert await store.open_answers(sessions) == []
    # Both answers charged (the cut one for what streamed) and recorded.
    assert sorted(await _finishes(sessions)) == ["interrupted", "stop"]


async def _finishes(sessions: Any) -> list[str]:
    from sqlmodel import col, select

    from bot.tables import Turn, UsageEvent

    async with sessions() as session:
        finishes = (
            await session.exec(select(col(Turn.finish_reason)).where(col(Turn.role) == "assistant"))
        ).all()
        charges = (await session.exec(select(col(UsageEvent.completion_tokens)))).all()
    assert len(charges) == len(finishes) and all(tokens > 0 for tokens in charges)
    return [str(f) for f in finishes]


async def test_a_console_answer_cut_by_a_stop_ends_with_the_note(
    fake_xai: FakeXAI, grok: GrokClient, sessions: Any, tmp_path: Path
) -> None:
    env = build(fake_xai, grok, sessions)
    never = asyncio.Event()
    fake_xai.queue_reply(
        ScriptedReply(text="Blue light scatters most, because " + "x " * 50, holds=((3, never),))
    )
    out = io.StringIO()
    session = asyncio.create_task(
        run_console(env.engine, lines=io.StringIO("why is the sky blue?\n"), out=out, image_dir=tmp_path)
    )
    await until(lambda: "Blue light" in out.getvalue())
    assert await env.engine.answers.inflight.settle(0.1) == 1
    await session
    output = out.getvalue()
    assert "Blue light" in output and NOTE in output
    assert await _finishes(sessions) == ["interrupted"]


async def test_orphans_of_dead_instances_are_closed_once_and_live_ones_left(sessions: Any) -> None:
    slack_place = Place("slack", "T1", "C1", "111.000")
    await store.add_open_answer(
        sessions, OpenMessage(slack_place, "111.001", "111.001"), instance="dead-1", now=utc_now()
    )
    live = await store.add_open_answer(
        sessions, OpenMessage(slack_place, "111.002"), instance="live-1", now=utc_now()
    )
    await store.add_open_answer(
        sessions, OpenMessage(Place("console", "local", "console"), "3"), instance="dead-1", now=utc_now()
    )
    closed: list[tuple[OpenMessage, str]] = []

    class Closing:
        name = "slack"

        async def close_orphan(self, message: OpenMessage, note: str) -> None:
            closed.append((message, note))

    out = io.StringIO()
    platforms: dict[str, Any] = {"slack": Closing(), "console": ConsolePlatform(out, image_dir=Path("."))}
    # Two instances sweep at once: each orphan is closed by one of them.
    counts = await asyncio.gather(
        close_orphans(sessions, platforms, live={"live-1"}),
        close_orphans(sessions, platforms, live={"live-1"}),
    )
    assert sum(counts) == 2
    assert closed == [(OpenMessage(slack_place, "111.001", "111.001"), INTERRUPTED)]
    assert NOTE in out.getvalue()  # the console says so once
    assert [row for row, *_ in await store.open_answers(sessions)] == [live]


def test_the_grace_period_setting_is_validated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # no .env
    assert Settings(_env_file=None).grokbot_shutdown_grace_s == 20  # type: ignore[call-arg]
    for wrong in ("-1", "601", "soon"):
        monkeypatch.setenv("GROKBOT_SHUTDOWN_GRACE_S", wrong)
        with pytest.raises(SettingsError) as raised:
            load_settings()
        assert "GROKBOT_SHUTDOWN_GRACE_S" in str(raised.value) and "0 to 600" in str(raised.value)
    monkeypatch.setenv("GROKBOT_SHUTDOWN_GRACE_S", "100")  # a platform that waits longer than 30 s
    assert load_settings().grokbot_shutdown_grace_s == 100
    monkeypatch.setenv("GROKBOT_SHUTDOWN_GRACE_S", "5.5")
    assert load_settings().grokbot_shutdown_grace_s == 5.5


async def test_on_postgresql_an_instance_closes_what_another_left_once_its_heartbeat_is_stale(
    sessions: Any,
) -> None:
    """The liveness of the claims: another host's instance is alive while it beat within the
    heartbeat window; once its beats stop, the next sweep of any instance closes its answers."""
    from datetime import timedelta

    from bot.jobs.timer import HEARTBEAT_WINDOW, beat
    from bot.services import orphans

    place = Place("slack", "T1", "C1", "111.000")
    other = "another-host-4242-abcdef"
    await store.add_open_answer(
        sessions, OpenMessage(place, "111.001", "111.001"), instance=other, now=utc_now()
    )
    closed: list[OpenMessage] = []

    class Closing:
        name = "slack"

        async def close_orphan(self, message: OpenMessage, note: str) -> None:
            closed.append(message)

    platforms: dict[str, Any] = {"slack": Closing()}
    await beat(sessions, instance=other, component="deferred", now=utc_now() - timedelta(seconds=5))
    assert await orphans(sessions, platforms, "me-1-aaaaaa") == 0  # it lives: left alone
    stale = utc_now() - HEARTBEAT_WINDOW - timedelta(seconds=1)
    await beat(sessions, instance=other, component="deferred", now=stale)
    assert await orphans(sessions, platforms, "me-1-aaaaaa") == 1
    assert closed == [OpenMessage(place, "111.001", "111.001")]
    assert await store.open_answers(sessions) == []


async def test_an_orphan_the_platform_rate_limits_is_closed_at_the_next_sweep(sessions: Any) -> None:
    from bot.errors import PlatformRateLimited

    place = Place("slack", "T1", "C1", "111.000")
    await store.add_open_answer(sessions, OpenMessage(place, "111.001"), instance="dead-1", now=utc_now())
    refusals = [PlatformRateLimited("chat.update", retry_after=3)]
    closed: list[OpenMessage] = []

    class Busy:
        name = "slack"

        async def close_orphan(self, message: OpenMessage, note: str) -> None:
            if refusals:
                raise refusals.pop()
            closed.append(message)

    platforms: dict[str, Any] = {"slack": Busy()}
    assert await close_orphans(sessions, platforms, live=set()) == 0
    assert len(await store.open_answers(sessions)) == 1  # kept for the next sweep
    assert await close_orphans(sessions, platforms, live=set()) == 1
    assert closed == [OpenMessage(place, "111.001")] and await store.open_answers(sessions) == []
