"""Discord's global limit (50 requests/s per bot, interaction endpoints exempt) paced by each instance
at its share, so that instances sharing one bot token stay within it together (issue 15, part 2)."""

from __future__ import annotations

import asyncio
from typing import Any

import discord
from discord.http import Route

from adapters.discord import DiscordAdapter
from adapters.discord.gateway import point_discord_py_at
from adapters.discord.pacing import SPAN_S, GlobalPacer
from bot.db import Sessions
from bot.engine import Engine
from bot.grok import GrokClient
from tests.adapters.discord.conftest import build_engine, discord_settings, populate
from tests.fakes.discord import FakeDiscord
from tests.fakes.xai import FakeXAI

APP_ID = 4242


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


class RecordingHTTP:
    """Stands in for discord.http.HTTPClient: records when each request was sent, by the fake clock."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.sent: list[tuple[str, float]] = []

    async def request(self, route: Route, **_kwargs: Any) -> str:
        self.sent.append((route.path, self.clock.now))
        return route.path


def paced(share: float) -> tuple[GlobalPacer, RecordingHTTP, FakeClock]:
    clock = FakeClock()
    pacer = GlobalPacer(application_id=lambda: APP_ID, clock=clock, sleep=clock.sleep)
    pacer.set_share(share)
    http = RecordingHTTP(clock)
    pacer.install(http)  # type: ignore[arg-type]
    return pacer, http, clock


async def test_at_half_share_a_burst_of_60_goes_25_per_second_and_the_first_25_do_not_wait() -> None:
    pacer, http, clock = paced(0.5)
    assert pacer.limit == 25

    await asyncio.gather(*(http.request(Route("GET", "/gateway/bot")) for _ in range(60)))

    times = [at for _, at in http.sent]
    assert len(times) == 60
    assert times[:25] == [0.0] * 25  # the burst the share allows goes at once...
    assert pacer.held == 35 and len(clock.sleeps) == 2  # ...without a sleep; the rest waited in turn
    # Never more than 25 in any second of the fake clock: the 26th after any request is >= 1 s later.
    assert all(times[i + 25] - times[i] >= 1.0 for i in range(len(times) - 25))
    assert times[25:50] == [SPAN_S] * 25 and times[50:] == [2 * SPAN_S] * 10


async def test_a_share_that_shrinks_holds_requests_until_the_window_fits_it() -> None:
    pacer, http, clock = paced(1.0)
    await asyncio.gather(*(http.request(Route("GET", "/gateway/bot")) for _ in range(50)))
    assert clock.now == 0.0 and pacer.held == 0

    pacer.set_share(1 / 3)  # a third instance joined: 16 per second from now on
    assert pacer.limit == 16
    await http.request(Route("GET", "/gateway/bot"))
    assert http.sent[-1][1] == SPAN_S  # all 50 had to age out of the window first


async def test_interaction_callbacks_and_interaction_webhooks_are_never_held() -> None:
    pacer, http, clock = paced(0.5)
    await asyncio.gather(*(http.request(Route("GET", "/gateway/bot")) for _ in range(25)))  # window full

    callback = Route(
        "POST",
        "/interactions/{interaction_id}/{interaction_token}/callback",
        interaction_id=1,
        interaction_token="t",
    )
    original = Route(
        "PATCH",
        "/webhooks/{webhook_id}/{webhook_token}/messages/@original",
        webhook_id=APP_ID,
        webhook_token="t",
    )
    followup = Route("POST", "/webhooks/{webhook_id}/{webhook_token}", webhook_id=APP_ID, webhook_token="t")
    for _ in range(10):
        for route in (callback, original, followup):
            await http.request(route)
    assert clock.now == 0.0 and pacer.held == 0 and clock.sleeps == []

    # A channel webhook of someone else's (not an interaction) and a bot call do count.
    other = Route("POST", "/webhooks/{webhook_id}/{webhook_token}", webhook_id=7, webhook_token="x")
    await http.request(other)
    await http.request(Route("GET", "/channels/{channel_id}", channel_id=1))
    assert pacer.held == 1 and http.sent[-2:] == [  # the first waited; the window then had room
        ("/webhooks/{webhook_id}/{webhook_token}", SPAN_S),
        ("/channels/{channel_id}", SPAN_S),
    ]


# -- end to end: two instances on the fake Discord, whose global limit is scaled down to 10/s --------

FAKE_GLOBAL_PER_S = 10
REQUESTS_EACH = 15


async def two_instances(
    fake: FakeDiscord, fake_xai: FakeXAI, grok: GrokClient, sessions: Sessions, *, paced: bool
) -> list[DiscordAdapter]:
    adapters = []
    for _ in range(2):
        settings = discord_settings(fake, fake_xai)
        engine: Engine = build_engine(settings, grok, sessions)
        # The pacer at the fake's scaled limit; its window longer than in production, since on a
        # loaded machine (the whole suite on two cores) a request can reach the fake hundreds of
        # ms after the pacer let it go: the test is of the share, not of the production margin.
        adapter = DiscordAdapter(settings, engine, global_limit_per_s=FAKE_GLOBAL_PER_S, global_span_s=2.0)
        adapter.pacer.set_share(0.5)  # what the rate lease gives each of two instances
        if not paced:
            del adapter.client.http.request  # discord.py's own request: no global pacing
        point_discord_py_at(settings)
        await adapter.client.http.static_login(fake.token)  # GET /users/@me: counts too
        adapters.append(adapter)
    return adapters


async def burst(fake_xai: FakeXAI, grok: GrokClient, sessions: Sessions, *, paced: bool) -> int:
    """Global 429s drawn by two instances sending REQUESTS_EACH requests at once each."""
    async with FakeDiscord(global_limit_per_s=FAKE_GLOBAL_PER_S) as fake:
        populate(fake)
        adapters = await two_instances(fake, fake_xai, grok, sessions, paced=paced)
        try:
            # GET /gateway/bot has no per-route bucket in the fake: only the global limit applies.
            calls = [a.client.http.get_bot_gateway() for a in adapters for _ in range(REQUESTS_EACH)]
            results = await asyncio.gather(*calls, return_exceptions=True)
            assert not [r for r in results if isinstance(r, BaseException)]
            assert len(fake.requests) >= 2 * (REQUESTS_EACH + 1)
            return sum(1 for r in fake.rate_limited if r.path == "/gateway/bot" or r.path == "/users/@me")
        finally:
            for adapter in adapters:
                await adapter.client.http.close()


async def test_two_instances_at_half_share_draw_no_global_429_where_unpaced_ones_do(
    fake_xai: FakeXAI, grok: GrokClient, sessions: Sessions
) -> None:
    assert await burst(fake_xai, grok, sessions, paced=False) > 0  # the load is enough to hit the limit
    assert await burst(fake_xai, grok, sessions, paced=True) == 0


async def test_the_adapter_paces_the_discord_py_client_it_builds(
    discord_fake: FakeDiscord, fake_xai: FakeXAI, grok: GrokClient, sessions: Sessions
) -> None:
    settings = discord_settings(discord_fake, fake_xai)
    adapter = DiscordAdapter(settings, build_engine(settings, grok, sessions))
    assert "request" in vars(adapter.client.http)  # the instance's request is the paced one
    assert adapter.pacer.limit == 50
    adapter.pacer.set_share(0.5)
    assert adapter.pacer.limit == 25
    assert isinstance(adapter.client, discord.Client)
