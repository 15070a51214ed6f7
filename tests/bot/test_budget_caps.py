"""Budgets that serve: a request the limits cannot cover whole gets what they allow (an answer cut to
what is left, fewer images), says so, and spend passes a limit only by what xAI bills beyond the cap
it was asked for, on SQLite and PostgreSQL, in one process and in two."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from bot.allowance import ANSWER_TOKENS, MIN_ANSWER_TOKENS, Allowance, full_allowance
from bot.db import create_engine, session_factory
from bot.errors import QuotaExceeded
from bot.grok import GrokClient
from bot.platform import Command
from bot.quotas import Ask, Cap, Charge, Reservation, Subject, format_usd
from bot.settings import TICKS_PER_USD
from bot.wording import budget_cut, describe, fewer_images
from tests.bot.budget_burst import QUESTION, Books, Outcome, Worst, books, burst, processes, worst_case
from tests.bot.engine_env import ALICE, EngineEnv, build, with_deferrals
from tests.bot.test_quotas import CENT, Clock, _pool, counters, make_quotas
from tests.fakes.platform import FakePlatform
from tests.fakes.xai import FakeXAI, ScriptedReply

MILLI = CENT // 10  # a tenth of a cent
USER = Subject("discord", "guild1", "alice")
NOON = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def tenths(*, units: int = 100, least: int = 10, base: int = 0) -> Ask:
    """Up to `units` tenths of a cent, at least `least`, after `base` ticks."""
    return Ask(
        kind="chat", model="grok-4.3", base_ticks=base, unit_ticks=MILLI, units=units, least_units=least
    )


# ---- the quota: as many units as the tightest limit allows ------------------------------------------


async def test_a_limit_below_the_whole_ask_holds_what_it_allows(sessions: Any) -> None:
    quotas = make_quotas(sessions, Clock(NOON))
    await quotas.reserve(USER, ticks=95 * CENT)
    held = await quotas.reserve_up_to(USER, tenths(base=CENT))
    # 5 cents left: the base cent, then 40 tenths of a cent.
    assert (held.units, held.ticks) == (40, 5 * CENT)
    assert held.cap is not None and (held.cap.limit, held.cap.limit_amount) == ("daily spend", 100 * CENT)
    assert held.cap.resets_at == datetime(2026, 11, 27, 5, 0, tzinfo=UTC)  # midnight in New York
    rows = await counters(sessions)
    assert rows[USER.spend_key, "2026-11-26"][0] == rows[USER.spend_key, "2026-11"][0] == 100 * CENT
    with pytest.raises(QuotaExceeded) as refused:
        await quotas.reserve_up_to(USER, tenths(base=CENT))
    error = refused.value
    assert (error.limit, error.remaining, error.needed_amount) == ("daily spend", 0, 2 * CENT)
    assert (error.kind, error.model) == ("chat", "grok-4.3")


async def test_a_whole_ask_that_fits_is_held_whole_and_names_no_limit(sessions: Any) -> None:
    quotas = make_quotas(sessions, Clock(NOON))
    held = await quotas.reserve_up_to(USER, tenths())
    assert (held.units, held.ticks, held.cap) == (100, 10 * CENT, None)


async def test_the_tightest_limit_sets_the_units_on_every_counter(sessions: Any) -> None:
    clock = Clock(datetime(2026, 11, 25, 12, 0, tzinfo=UTC))
    quotas = make_quotas(sessions, clock, grokbot_user_monthly_usd=Decimal("1.50"))
    await quotas.charge(USER, Charge(kind="chat", model="m", cost_ticks=145 * CENT, idempotency_key="k"))
    clock.now = NOON  # a new day: the day has room for $1.00, the month for $0.05
    held = await quotas.reserve_up_to(USER, tenths())
    assert held.units == 50 and held.cap is not None and held.cap.limit == "monthly spend"
    rows = await counters(sessions)
    # The day gave back what it held beyond the month's room, in the same transaction.
    assert rows[USER.spend_key, "2026-11-26"][0] == 5 * CENT
    assert rows[USER.spend_key, "2026-11"][0] == 150 * CENT


async def test_the_workspace_pool_cuts_everyone_alike(sessions: Any) -> None:
    quotas = make_quotas(sessions, Clock(NOON), grokbot_workspace_monthly_usd=Decimal("0.03"))
    held = await quotas.reserve_up_to(USER, tenths())
    assert held.units == 30 and held.cap is not None and held.cap.limit == "workspace monthly spend"
    rows = await counters(sessions)
    assert {rows[key][0] for key in rows} == {3 * CENT}


async def test_images_are_granted_as_many_as_the_image_quota_and_the_spend_allow(sessions: Any) -> None:
    quotas = make_quotas(sessions, Clock(NOON), grokbot_user_daily_images=3)
    await quotas.reserve(USER, ticks=0, images=1)
    four = Ask(
        kind="image", model="grok-imagine-image", unit_ticks=2 * CENT, unit_images=1, units=4, least_units=1
    )
    held = await quotas.reserve_up_to(USER, four)
    assert (held.units, held.images, held.ticks) == (2, 2, 4 * CENT)
    assert held.cap is not None and (held.cap.limit, held.cap.unit) == ("daily images", "images")
    bob = Subject("discord", "guild1", "bob")
    await quotas.reserve(bob, ticks=95 * CENT)
    held = await quotas.reserve_up_to(bob, four)
    assert (held.units, held.images) == (2, 2)
    assert held.cap is not None and held.cap.limit == "daily spend"
    rows = await counters(sessions)
    assert rows[bob.images_key, "2026-11-26"][0] == 2  # the images counter gave back the two
    with pytest.raises(QuotaExceeded) as refused:
        await quotas.reserve_up_to(USER, four)
    assert (refused.value.limit, refused.value.needed_amount) == ("daily images", 1)


async def test_100_concurrent_asks_share_a_small_limit_to_the_last_slice(db_url: str) -> None:
    engine = create_engine(db_url, **_pool(db_url))
    try:
        sessions = session_factory(engine)
        quotas = make_quotas(sessions, Clock(NOON), grokbot_user_daily_usd=Decimal("0.37"))
        results = await asyncio.gather(
            *(quotas.reserve_up_to(USER, tenths()) for _ in range(100)), return_exceptions=True
        )
        held = [r for r in results if isinstance(r, Reservation)]
        refused = [r for r in results if isinstance(r, QuotaExceeded)]
        # Three whole asks and the last 7 cents; nobody else, and nobody below the least.
        assert sorted(r.units for r in held) == [70, 100, 100, 100]
        assert len(refused) == 96
        assert {(r.limit, r.remaining, r.needed_amount) for r in refused} == {("daily spend", 0, CENT)}
        rows = await counters(sessions)
        assert rows[USER.spend_key, "2026-11-26"] == (37 * CENT, 37 * CENT)
        assert rows[USER.spend_key, "2026-11"][0] == 37 * CENT
    finally:
        await engine.dispose()


async def test_concurrent_asks_of_many_users_fit_the_pool_and_keep_each_users_books(db_url: str) -> None:
    engine = create_engine(db_url, **_pool(db_url))
    try:
        sessions = session_factory(engine)
        quotas = make_quotas(sessions, Clock(NOON), grokbot_workspace_monthly_usd=Decimal("0.25"))
        users = [Subject("slack", "T1", f"U{n}") for n in range(50)]
        asks = [(user, tenths(units=30, least=5)) for user in users for _ in range(2)]
        results = await asyncio.gather(
            *(quotas.reserve_up_to(user, ask) for user, ask in asks), return_exceptions=True
        )
        held = [r for r in results if isinstance(r, Reservation)]
        assert all(isinstance(r, Reservation | QuotaExceeded) for r in results)
        rows = await counters(sessions)
        pool = rows["workspace:slack:T1", "2026-11"][0]
        assert pool == sum(r.ticks for r in held)
        assert 25 * CENT - 5 * MILLI < pool <= 25 * CENT  # less than the least ask is left over
        for user in users:
            mine = sum(r.ticks for r in held if r.subject == user)
            assert rows.get((user.spend_key, "2026-11-26"), (0, 0))[0] == mine
            assert rows.get((user.spend_key, "2026-11"), (0, 0))[0] == mine
    finally:
        await engine.dispose()


# ---- the allowance: cut in proportion, the model asked to think less --------------------------------


def test_a_cut_allowance_keeps_a_reasoning_share_and_asks_for_less_thinking() -> None:
    whole = full_allowance("grok-4-1-fast-reasoning", None)
    assert whole.within(whole.total, model="grok-4-1-fast-reasoning", takes_effort=False) == whole
    cut = whole.within(1_209, model="grok-4-1-fast-reasoning", takes_effort=False)
    # No reasoning_effort for this model: its default reasoning keeps its share (8,000 in 12,096).
    assert (cut.answer, cut.reasoning, cut.effort, cut.total) == (409, 800, None, 1_209)
    # grok-4.3 can be told not to think: the whole cut allowance is text, up to the uncut text.
    thinking_off = full_allowance("grok-4.3", None).within(5_000, model="grok-4.3", takes_effort=True)
    assert (thinking_off.answer, thinking_off.reasoning, thinking_off.effort) == (ANSWER_TOKENS, 904, "none")
    # Someone who asked to see the thinking still sees it, at the least effort.
    low = full_allowance("grok-3-mini", "high").within(2_000, model="grok-3-mini", takes_effort=True)
    assert (low.effort, low.answer + low.reasoning) == ("low", 2_000) and low.reasoning > 0


def test_a_tool_allowance_is_cut_in_the_same_proportion() -> None:
    # Two web searches ($0.01) at $2.50 per 1M output tokens: 4,000 tokens' worth.
    whole = Allowance(answer=4_000, reasoning=4_000, effort=None).with_tools(100_000_000, out_price=25_000)
    assert whole.tools == 4_000 and whole.tool_ticks(25_000) == 100_000_000
    cut = whole.within(6_000, model="grok-4-1-fast-reasoning", takes_effort=False)
    assert (cut.answer, cut.reasoning, cut.tools) == (2_000, 2_000, 2_000)
    assert cut.tool_ticks(25_000) // 50_000_000 == 1  # one search call fits what is left


# ---- answers and images near a limit, as people see them ----------------------------------------------


def _limited(fake: FakeXAI, grok: GrokClient, sessions: Any, daily: Decimal, **overrides: Any) -> EngineEnv:
    return build(
        fake, grok, sessions, grokbot_user_daily_usd=daily, grokbot_user_monthly_usd="0", **overrides
    )


def images_asked(fake: FakeXAI) -> list[int]:
    """How many images each generation call asked for."""
    return [r.json["n"] for r in fake.requests if r.path.endswith("/images/generations")]


async def test_an_answer_the_budget_cuts_says_so_and_when_the_limit_resets(
    fake_xai: FakeXAI, grok: GrokClient, sessions: Any
) -> None:
    env = _limited(fake_xai, grok, sessions, Decimal("0.01"))
    assert worst_case("grok-4.3").whole > CENT  # the whole answer would not fit
    env.fake.queue_reply(ScriptedReply(at_cap=True, chunk_chars=400))
    await env.say(QUESTION)
    request = env.fake.chat_requests()[-1].json
    assert MIN_ANSWER_TOKENS < request["max_completion_tokens"] < ANSWER_TOKENS
    assert request["reasoning_effort"] == "none"  # grok-4.3 is told not to think
    assert env.platform.visible_text().endswith(
        "\n\n— I stopped here: this answer reached your daily spend limit ($0.01, resets at 00:00 UTC, "
        "in 12 h 0 min)."
    )
    spent = await books(sessions)
    assert spent.charged == 1 and spent.spend <= CENT


async def test_a_deferred_answer_the_budget_cuts_says_so_when_it_is_accepted(
    fake_xai: FakeXAI, grok: GrokClient, sessions: Any
) -> None:
    env = _limited(fake_xai, grok, sessions, Decimal("0.01"))
    with_deferrals(env, grok, sessions)
    await env.say(command=Command("ask", options={"defer": "true"}, text=QUESTION))
    request = env.fake.chat_requests()[-1].json
    assert (
        request["deferred"] is True and MIN_ANSWER_TOKENS < request["max_completion_tokens"] < ANSWER_TOKENS
    )
    assert env.platform.last.text.endswith(
        "It may be shorter than usual: your daily spend limit ($0.01) covers only part of a full answer "
        "until it resets at 00:00 UTC (in 12 h 0 min)."
    )
    whole = build(fake_xai, grok, sessions)  # no limit in the way: nothing said of one
    with_deferrals(whole, grok, sessions)
    await whole.say(command=Command("ask", options={"defer": "true"}, text=QUESTION))
    assert "deferred request" in whole.platform.last.text and "shorter" not in whole.platform.last.text


async def test_a_length_finish_without_a_cut_is_not_told_as_one(
    fake_xai: FakeXAI, grok: GrokClient, sessions: Any
) -> None:
    env = build(fake_xai, grok, sessions)
    env.fake.queue_reply(ScriptedReply(at_cap=True, chunk_chars=400))
    await env.say(QUESTION)
    assert env.fake.chat_requests()[-1].json["max_completion_tokens"] == ANSWER_TOKENS
    text = env.platform.visible_text()
    assert len(text) == 4 * ANSWER_TOKENS and "I stopped here" not in text


async def test_a_refusal_names_what_is_left_and_what_the_smallest_answer_needs(
    fake_xai: FakeXAI, grok: GrokClient, sessions: Any
) -> None:
    env = _limited(fake_xai, grok, sessions, Decimal("0.0004"))
    await env.say(QUESTION)
    least = format_usd(worst_case("grok-4.3").least)
    assert env.platform.last.text == (
        f"You have $0.0004 left of your daily spend limit ($0.0004); the smallest answer from grok-4.3 "
        f"needs about {least}. It resets at 00:00 UTC (in 12 h 0 min), or an admin can raise it."
    )
    assert env.platform.last.private_to == ALICE.id
    assert env.fake.chat_requests() == []


async def test_imagine_makes_as_many_images_as_the_quota_allows_and_says_so(
    fake_xai: FakeXAI, grok: GrokClient, sessions: Any
) -> None:
    env = build(fake_xai, grok, sessions, grokbot_user_daily_images=3)
    await env.command("imagine", "a fox", count="1")
    await env.command("imagine", "a red fox", count="4")
    assert images_asked(env.fake) == [1, 2]  # the count was reduced before the call
    message = env.platform.last
    assert len(message.images) == 2 and message.final
    assert message.text.endswith(
        "2 of the 4 images: your daily image quota (3) allows 2 more today. It resets at 00:00 UTC "
        "(in 12 h 0 min)."
    )
    assert (await counters(sessions))["images:fake:W1:U1", "2026-11-26"][0] == 3


async def test_imagine_makes_as_many_images_as_the_spend_allows_and_refuses_when_none_fits(
    fake_xai: FakeXAI, grok: GrokClient, sessions: Any
) -> None:
    env = _limited(fake_xai, grok, sessions, Decimal("0.05"))  # an image costs $0.02
    await env.command("imagine", "a red fox", count="4")
    assert images_asked(env.fake) == [2]
    assert env.platform.last.text.endswith(
        "2 of the 4 images: your daily spend limit ($0.05) covers 2 more. It resets at 00:00 UTC "
        "(in 12 h 0 min)."
    )
    await env.command("imagine", "a red fox", count="4")  # $0.01 left: not one image
    assert images_asked(env.fake) == [2]
    assert env.platform.last.text.startswith(
        "You have $0.01 left of your daily spend limit ($0.05); one image from grok-imagine-image needs "
        "about $0.02."
    )


def test_a_workspace_limit_is_named_as_the_workspaces() -> None:
    resets = datetime(2026, 12, 1, 0, 0, tzinfo=UTC)
    cap = Cap("workspace monthly spend", 50 * TICKS_PER_USD, "ticks", resets)
    assert budget_cut(cap, zone=UTC, now=NOON) == (
        "— I stopped here: this answer reached this workspace's monthly spend limit ($50.00, resets at "
        "2026-12-01 00:00 UTC, in 4 d 12 h)."
    )
    assert fewer_images(1, 3, cap, zone=UTC, now=NOON).startswith(
        "1 of the 3 images: this workspace's monthly spend limit ($50.00) covers 1 more."
    )
    refusal = QuotaExceeded(
        limit=cap.limit,
        limit_amount=cap.limit_amount,
        used_amount=cap.limit_amount,
        unit="ticks",
        resets_at=resets,
        needed_amount=CENT,
        kind="chat",
        model="grok-4.3",
    )
    assert describe(refusal, zone=UTC, now=NOON).startswith(
        "This workspace has $0.00 left of its monthly spend limit ($50.00); the smallest answer from "
        "grok-4.3 needs about $0.01. It resets at 2026-12-01 00:00 UTC (in 4 d 12 h)"
    )


# ---- spend under 100 concurrent answers: what the limit buys, and never more -------------------------


@dataclass(frozen=True)
class Scenario:
    """A model, and what one answer of it may be billed beyond its reservation (`allowed`): its
    reasoning past the share kept for it, for a model that cannot be told to think less."""

    model: str
    allowed: int


# The fake reasons 8,000 tokens whenever it may think: the whole default allowance. grok-4.3 is
# told not to think when cut (`none`), so nothing is billed beyond its cap; grok-4-1-fast-reasoning
# takes no reasoning_effort, so its cut answer may be billed all 8,000 beyond its share.
THINKS = 8_000
SCENARIOS = [Scenario("grok-4.3", 0), Scenario("grok-4-1-fast-reasoning", THINKS * 5_000)]


def small_limit(worst: Worst) -> int:
    """Worth five whole answers, and a small one: a limit that used to buy five, now six."""
    return 5 * worst.whole + worst.least + 100 * worst.out_price


def at_the_cap() -> ScriptedReply:
    return ScriptedReply(at_cap=True, reasoning_tokens=THINKS, chunk_chars=512)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.model)
async def test_100_concurrent_answers_get_what_the_limit_buys_and_never_a_second_past_it(
    fake_xai: FakeXAI, grok: GrokClient, sessions: Any, scenario: Scenario
) -> None:
    limit = small_limit(worst_case(scenario.model))
    fake_xai.default_reply = at_the_cap()
    env = _limited(fake_xai, grok, sessions, Decimal(limit) / TICKS_PER_USD, grokbot_model=scenario.model)
    outcome = await burst(env.engine, FakePlatform(), 100, prefix="t")
    assert_what_the_limit_buys(outcome, await books(sessions), limit, scenario)
    capped = [r.json for r in fake_xai.chat_requests() if r.json["max_completion_tokens"] < ANSWER_TOKENS]
    assert len(capped) == 1
    if scenario.model == "grok-4.3":
        assert capped[0]["reasoning_effort"] == "none"


@pytest.mark.parametrize("scenario", SCENARIOS[1:], ids=lambda s: s.model)
async def test_two_processes_on_one_database_share_the_limit(
    fake_xai: FakeXAI, db_url: str, scenario: Scenario
) -> None:
    limit = small_limit(worst_case(scenario.model))
    fake_xai.default_reply = at_the_cap()
    async with asyncio.timeout(300):  # a guard against a stuck child, not a measure
        outcome = await processes(db_url, fake_xai.base_url, model=scenario.model, daily_ticks=limit)
    engine = create_engine(db_url, pool_size=1)
    try:
        assert_what_the_limit_buys(outcome, await books(session_factory(engine)), limit, scenario)
    finally:
        await engine.dispose()


def assert_what_the_limit_buys(outcome: Outcome, books_after: Books, limit: int, scenario: Scenario) -> None:
    # Five whole answers and one cut to the rest: the cut one says so, the five that also ended
    # at their cap ("length") do not. Everyone else is refused; nothing is left held.
    assert (outcome.answers, outcome.refusals, outcome.cut) == (6, 94, 1)
    assert (books_after.charged, books_after.held) == (6, 0)
    overshoot = books_after.spend - limit
    assert overshoot <= scenario.allowed
    if scenario.allowed:
        assert overshoot > 0  # the case this scenario is about did happen
