"""`/grok <text>` end to end through the fake Slack: a mistyped command is answered privately with
the list of commands and never reaches xAI; `help <command>`; quoted values; `ask`'s options before
a bare question."""

from __future__ import annotations

import html

from tests.adapters.slack.conftest import ANA, GENERAL, Stack


def told_to_ana(stack: Stack) -> list[str]:
    """What only Ana saw (ephemeral messages, answers through the command's response_url), as
    Slack shows it (`&lt;` as `<`)."""
    ephemeral = [e["text"] for e in stack.slack.ephemerals if e["user"] == ANA]
    responded = [r["text"] for r in stack.slack.responses if r.get("response_type") == "ephemeral"]
    return [html.unescape(text) for text in ephemeral + responded]


async def grok(stack: Stack, text: str) -> None:
    delivery = await stack.sender.command(text, user=ANA, channel=GENERAL)
    assert delivery.status == 200
    await stack.settle()


async def test_a_mistyped_command_is_answered_privately_with_the_list_and_costs_nothing(stack: Stack) -> None:
    await grok(stack, "usgae")
    [told] = told_to_ana(stack)
    assert "`usgae` is not a command. Did you mean `usage`?" in told
    assert "`imagine`" in told and "`digest`" in told
    assert not stack.slack.bot_messages(GENERAL)  # nothing in the channel
    assert not stack.xai.requests  # and nothing asked of Grok


async def test_help_with_a_command_shows_its_options(stack: Stack) -> None:
    await grok(stack, "help imagine")
    [told] = told_to_ana(stack)
    assert "imagine" in told and "count:1-4" in told and "how many" in told
    assert not stack.xai.requests


async def test_an_unclosed_quote_names_the_accepted_forms(stack: Stack) -> None:
    await grok(stack, 'digest add schedule:"mon 09:00')
    [told] = told_to_ana(stack)
    assert "opens a quote that is not closed" in told
    assert "digest add schedule:<when>" in told and "digest remove id:<n>" in told


async def test_asks_options_before_a_bare_question_are_read_as_options(stack: Stack) -> None:
    # This stack runs no deferred-answer jobs: the refusal shows `defer:true` was read as the
    # option, where it used to reach Grok as part of an ordinary question.
    await grok(stack, "defer:true why is the sky blue")
    [told] = told_to_ana(stack)
    assert "Deferred answers are not available" in told
    assert not stack.xai.chat_requests()
