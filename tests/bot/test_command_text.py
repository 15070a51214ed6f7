"""Commands typed as text (Slack's `/grok ...`, the console's `/...`): typos refused with the list of
commands instead of being paid for as questions, `help <command>`, quoted option values, parse errors
that list the accepted forms, and `ask`'s options before a bare question."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from bot.command_registry import REGISTRY, spec_of, suggest
from bot.grok import GrokClient
from bot.help_text import command_help
from bot.parsing import parse_command_text
from bot.platform import Author, Command
from tests.bot.engine_env import ALICE, EngineEnv, build, with_deferrals
from tests.fakes.xai import FakeXAI, ScriptedReply

ADMIN = Author("U9", "root", is_admin=True)


@pytest.fixture
def env(fake_xai: FakeXAI, grok: GrokClient, sessions: Any) -> EngineEnv:
    return build(fake_xai, grok, sessions)


def told_privately(env: EngineEnv, author: Author = ALICE) -> str:
    return [m for m in env.platform.messages if m.private_to == author.id][-1].text


# -- the parser ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "nearest"),
    [("usgae", "usage"), ("/usgae", "usage"), ("imagin", "imagine"), ("rset!", "reset"), ("hlep", "help")],
)
def test_a_word_close_to_a_command_alone_is_a_typo_with_the_nearest_name(typed: str, nearest: str) -> None:
    command = parse_command_text(typed)
    assert command.name == "help" and not command.options and not command.text
    assert f"Did you mean `{nearest}`?" in command.error
    for spec in REGISTRY:  # and the whole list
        assert f"`{spec.name}`" in command.error


def test_a_close_word_followed_by_an_option_is_a_typo_too() -> None:
    assert "Did you mean `usage`?" in parse_command_text("usgae period:month").error
    assert "Did you mean `imagine`?" in parse_command_text("imagin count:2 a red fox").error


def test_a_slashed_word_is_a_command_even_far_from_every_name() -> None:
    command = parse_command_text("/foo bar baz")
    assert command.error.startswith("`foo` is not a command. The commands: `ask`")
    assert "Did you mean" not in command.error


@pytest.mark.parametrize(
    "question",
    [
        "why is the sky blue",
        "hello",
        "foo",
        "images of cats please",
        "imagin a red fox",  # a close word with more words after it: a question (the rule's edge)
        "usages of semicolons",
        "help me write a poem",
        "reset my router?",
        "/etc/hosts what is this file",
        "https://example.com is it safe",
        "temperature:2 is it warm",  # not one of ask's options: just text
    ],
)
def test_words_that_are_not_a_command_ask(question: str) -> None:
    assert parse_command_text(question) == Command(name="ask", text=question)


def test_a_command_name_alone_may_end_in_punctuation() -> None:
    assert parse_command_text("usage?") == Command(name="usage")
    assert parse_command_text("/reset!") == Command(name="reset")


def test_options_before_a_bare_question_are_asks_options() -> None:
    command = parse_command_text("defer:true why is the sky blue")
    assert command == Command(name="ask", options={"defer": "true"}, text="why is the sky blue")
    both = parse_command_text("model:grok-3 reasoning:high why")
    assert (both.name, dict(both.options), both.text) == (
        "ask",
        {"model": "grok-3", "reasoning": "high"},
        "why",
    )


def test_quoted_values_keep_their_spaces_in_every_kind_of_quote() -> None:
    digest = parse_command_text('digest add schedule:"mon 09:00" channel:#general')
    assert digest == Command("digest", {"schedule": "mon 09:00", "channel": "#general"}, text="add")
    quota = parse_command_text("quota user:'@ana' daily_usd:2")
    assert dict(quota.options) == {"user": "@ana", "daily_usd": "2"}
    typographic = parse_command_text("digest add schedule:\u201cweekdays 17:30\u201d")
    assert typographic.options == {"schedule": "weekdays 17:30"}
    asked = parse_command_text('ask model:"grok-4.3" what is 2:30 in seconds')
    assert (dict(asked.options), asked.text) == ({"model": "grok-4.3"}, "what is 2:30 in seconds")


def test_an_unclosed_quote_is_an_error_listing_the_accepted_forms() -> None:
    command = parse_command_text('digest add schedule:"mon 09:00')
    assert command.name == "digest"
    assert command.error.startswith("The value of `schedule` opens a quote that is not closed. Usage: ")
    assert all(f"`{form}`" in command.error for form in spec_of("digest").forms())  # type: ignore[union-attr]


def test_every_parse_error_lists_the_commands_usage() -> None:
    twice = parse_command_text("imagine count:1 count:2 a fox")
    assert twice.error == "The option `count` is given twice. Usage: `imagine [count:1-4] <prompt>`."
    unclosed = parse_command_text("quota user:'<@U1>")
    assert unclosed.error.endswith(
        "Usage: `quota user:<user> [daily_usd:<n>] [monthly_usd:<n>] [images:<n>]`."
    )


def test_help_with_a_command_name_is_that_commands_help() -> None:
    assert parse_command_text("help imagine") == Command(name="help", text="imagine")
    assert parse_command_text("/help /digest") == Command(name="help", text="digest")
    assert parse_command_text("help Usage?") == Command(name="help", text="usage")
    assert "Did you mean `usage`?" in parse_command_text("help usgae").error


def test_the_typo_rule_leaves_greetings_alone() -> None:
    for word in ("hello", "hi", "hey", "thanks", "test", "ping", "why", "poem"):
        assert suggest(word) is None, word


def test_line_breaks_of_a_question_are_kept() -> None:
    assert parse_command_text("ask first line\n  second line").text == "first line\n  second line"


# -- through the engine ------------------------------------------------------------------------


async def test_a_typo_is_answered_privately_with_the_list_and_reaches_no_model(env: EngineEnv) -> None:
    await env.say(command=parse_command_text("usgae"))
    told = told_privately(env)
    assert "`usgae` is not a command. Did you mean `usage`?" in told
    assert "`imagine`" in told and "`help <command>`" in told
    assert not env.fake.requests  # nothing was asked of xAI, so nothing was paid for


async def test_help_with_a_command_shows_its_options_from_the_registry(env: EngineEnv) -> None:
    await env.say(command=parse_command_text("help quota"))
    told = told_privately(env)
    quota = spec_of("quota")
    assert quota is not None and told == command_help(quota)
    assert told.startswith("**quota** — admins: show or set a user's limits.")
    for option in quota.all_options:
        assert f"`{option.written}`" in told
    assert "`user:<user>` (required)" in told and 'schedule:"mon 09:00"' in told


async def test_help_alone_still_lists_every_command(env: EngineEnv) -> None:
    await env.say(command=parse_command_text("help"))
    assert all(f"`{spec.name}" in told_privately(env) for spec in REGISTRY)
    assert "`help <command>`" in told_privately(env)


async def test_a_quoted_user_and_amount_reach_the_quota_command(env: EngineEnv) -> None:
    await env.say(command=parse_command_text("quota user:'<@U2>' daily_usd:\"2.50\""), author=ADMIN)
    assert "User `U2` now has limits: $2.50 a day" in told_privately(env, ADMIN)


async def test_an_unclosed_quote_is_told_with_the_usage_and_nothing_runs(env: EngineEnv) -> None:
    await env.say(command=parse_command_text('imagine count:"2 a red fox'))
    assert "`imagine [count:1-4] <prompt>`" in told_privately(env)
    assert not env.fake.requests


async def test_options_before_a_bare_question_defer_the_answer(
    fake_xai: FakeXAI, grok: GrokClient, sessions: Any
) -> None:
    env = build(fake_xai, grok, sessions)
    deferrals = with_deferrals(env, grok, sessions)
    fake_xai.queue_reply(ScriptedReply(text="Rayleigh scattering.", deferred_pending_polls=1))
    await env.say(command=parse_command_text("defer:true why is the sky blue"))
    [request] = fake_xai.chat_requests()
    assert request.json["deferred"] is True
    assert request.json["messages"][-1]["content"] == "[alice] why is the sky blue"  # without the option
    assert "deferred request" in env.platform.last.text
    for _ in range(4):
        env.clock.now += timedelta(seconds=40)
        await deferrals.poll_due()
    assert env.platform.last.text == "Rayleigh scattering."
