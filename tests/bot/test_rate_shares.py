"""Platform rate budgets shared by the instances on one database (issue 15, part 2): each instance's
share is 1/N of the instances alive, kept by a lease renewed in the background."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.db import Sessions
from bot.jobs import RateLease, heartbeat_check
from bot.jobs.shares import RENEW_S
from bot.streaming import Shares


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


async def test_each_instance_paces_at_its_share_of_the_instances_alive(sessions: Sessions) -> None:
    clock = Clock()
    first, second = Shares(), Shares()
    seen: list[float] = []
    first.subscribe(seen.append)  # what the engine's budgets and the adapters' pacers are told
    a = RateLease(sessions, first, instance_id="host-1-aaaaaa", clock=clock)
    b = RateLease(sessions, second, instance_id="host-2-bbbbbb", clock=clock)
    assert await a.renew() == 1 and first.value == 1.0  # alone, the whole budget
    await b.start()  # a newcomer counts the others before it serves anything
    assert b.instances == 2 and second.value == 0.5
    assert await a.renew() == 2 and first.value == 0.5
    await b.stop()  # a leaver gives its share back
    assert await a.renew() == 1 and first.value == 1.0
    assert seen == [1.0, 0.5, 1.0]


async def test_an_instance_that_stopped_renewing_holds_no_share(sessions: Sessions) -> None:
    clock = Clock()
    first = Shares()
    a = RateLease(sessions, first, instance_id="host-1-aaaaaa", clock=clock)
    b = RateLease(sessions, Shares(), instance_id="host-2-bbbbbb", clock=clock)
    await b.renew()
    assert await a.renew() == 2
    clock.now += timedelta(seconds=3 * RENEW_S + 1)  # b died without a word
    assert await a.renew() == 1 and first.value == 1.0
    # The lease's row is no sign that the scheduler lives (/readyz).
    assert not await heartbeat_check(sessions, instance="host-1-aaaaaa", clock=clock)()
