"""Slack's part of `grokbot check` against the fake Slack: the bot token (auth.test), the signing
secret in HTTP mode, the app-level token in Socket Mode (apps.connections.open), and Slack out of reach."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest_asyncio

from adapters.slack.check import check_slack
from bot.checks import CheckLine
from bot.settings import Settings
from tests.fakes.slack import APP_TOKEN, BOT_TOKEN, SIGNING_SECRET, TEAM_ID, FakeSlack


@pytest_asyncio.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    async with FakeSlack() as fake:
        yield fake


def settings(slack: FakeSlack, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "slack_bot_token": BOT_TOKEN,
        "slack_signing_secret": SIGNING_SECRET,
        "slack_api_url": slack.api_url,
        "port": 3999,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def written(lines: list[CheckLine]) -> str:
    return "".join(line.written for line in lines)


async def test_a_good_token_names_the_workspace_and_the_bot_user_in_http_mode(slack: FakeSlack) -> None:
    lines = await check_slack(settings(slack))
    assert [line.ok for line in lines] == [True, True]
    assert lines[0].text == (
        f"Slack bot token: workspace Fake Workspace ({TEAM_ID}), bot user @grok (U0GROKBOT)"
    )
    assert "SLACK_SIGNING_SECRET is set" in lines[1].text and "port 3999" in lines[1].text
    assert [call.method for call in slack.calls] == ["auth.test"]


async def test_a_refused_bot_token_says_so_with_the_fix_and_never_shows_the_token(slack: FakeSlack) -> None:
    wrong = "xoxb-9999-not-the-bot-token"
    lines = await check_slack(settings(slack, slack_bot_token=wrong))
    assert lines[0].ok is False
    assert lines[0].text == "Slack refused SLACK_BOT_TOKEN (invalid_auth)"
    assert "OAuth & Permissions" in lines[0].fix
    assert wrong not in written(lines) and BOT_TOKEN not in written(lines)


async def test_http_mode_without_a_signing_secret_fails_with_the_fix(slack: FakeSlack) -> None:
    lines = await check_slack(settings(slack, slack_signing_secret=None))
    assert [line.ok for line in lines] == [True, False]
    assert "SLACK_SIGNING_SECRET is not set" in lines[1].text
    assert "Basic Information" in lines[1].fix and "SLACK_APP_TOKEN" in lines[1].fix


async def test_socket_mode_proves_the_app_level_token(slack: FakeSlack) -> None:
    lines = await check_slack(settings(slack, slack_app_token=APP_TOKEN, slack_signing_secret=None))
    assert [line.ok for line in lines] == [True, True]
    assert lines[1].text == "Slack Socket Mode: SLACK_APP_TOKEN opens a connection"
    [opened] = slack.calls_to("apps.connections.open")
    assert opened.error == ""


async def test_socket_mode_with_a_wrong_or_a_bot_token_as_app_token_fails(slack: FakeSlack) -> None:
    wrong = await check_slack(settings(slack, slack_app_token="xapp-1-wrong", slack_signing_secret=None))
    assert wrong[1].ok is False
    assert wrong[1].text == "Slack refused SLACK_APP_TOKEN for Socket Mode (invalid_auth)"
    assert "connections:write" in wrong[1].fix
    swapped = await check_slack(settings(slack, slack_app_token=BOT_TOKEN, slack_signing_secret=None))
    assert swapped[1].text == "Slack refused SLACK_APP_TOKEN for Socket Mode (not_allowed_token_type)"
    assert "xapp-1-wrong" not in written(wrong) and BOT_TOKEN not in written(swapped)


async def test_slack_out_of_reach_is_not_reported_as_a_bad_token() -> None:
    nowhere = "http://127.0.0.1:1/api/"  # nobody listens there
    values = {"slack_bot_token": BOT_TOKEN, "slack_signing_secret": SIGNING_SECRET, "slack_api_url": nowhere}
    [token, secret] = await check_slack(Settings(_env_file=None, **values))  # type: ignore[call-arg]
    assert token.ok is False and token.text.startswith(f"Slack unreachable at {nowhere} (")
    assert "SLACK_API_URL" in token.fix and "refused" not in token.text
    assert secret.ok is True  # checked without Slack


async def test_slack_not_configured_is_a_note() -> None:
    [note] = await check_slack(Settings(_env_file=None))  # type: ignore[call-arg]
    assert note.ok is None and "SLACK_BOT_TOKEN is not set" in note.text
