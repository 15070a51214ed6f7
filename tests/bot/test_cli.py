"""The command line as an operator meets it: help, migrate, run without credentials, bad config."""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from bot.__main__ import COMMANDS as HANDLERS
from bot.__main__ import build_parser
from tests.fakes.discord import FakeDiscord
from tests.fakes.slack import APP_TOKEN, BOT_TOKEN, FakeSlack
from tests.fakes.xai import FakeXAI

COMMANDS = ("run", "console", "migrate", "check", "usage")  # the contract's, as far as built


def subcommands() -> dict[str, argparse.ArgumentParser]:
    """The parser's own subcommands: what `grokbot --help` is made from."""
    [choices] = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(choices.choices)


def grokbot(
    *args: str, cwd: Path, env: dict[str, str] | None = None, wrap: Sequence[str] = ()
) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DISCORD_", "SLACK_", "XAI_"))}
    base.pop("DATABASE_URL", None)
    return subprocess.run(
        [*wrap, sys.executable, "-m", "bot", *args],
        cwd=cwd,
        env={**base, **(env or {})},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_help_lists_every_command(tmp_path: Path) -> None:
    result = grokbot("--help", cwd=tmp_path)
    assert result.returncode == 0
    for command in (*COMMANDS, *subcommands()):
        assert command in result.stdout


def test_every_command_the_parser_knows_has_a_handler_and_no_other() -> None:
    # argparse writes the help from the parser; what can drift is the table that runs the commands.
    assert set(subcommands()) == set(HANDLERS)
    assert set(COMMANDS) <= set(HANDLERS)


@pytest.mark.parametrize("command", sorted({*COMMANDS, *HANDLERS}))
def test_each_command_has_its_own_help(tmp_path: Path, command: str) -> None:
    result = grokbot(command, "--help", cwd=tmp_path)
    assert result.returncode == 0
    assert f"grokbot {command}" in result.stdout


def test_migrate_creates_the_schema_in_the_default_sqlite_file(tmp_path: Path) -> None:
    result = grokbot("migrate", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # no alembic plugin lines, no INFO chatter: only what went wrong
    with sqlite3.connect(tmp_path / "grokbot.db") as db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"conversation", "turn", "usage_event", "quota_counter", "deferred_request"} <= tables


def test_run_without_platform_credentials_names_the_console(tmp_path: Path) -> None:
    result = grokbot("run", cwd=tmp_path, env={"XAI_API_KEY": "xai-test"})
    assert result.returncode != 0
    assert "grokbot console" in result.stderr
    assert "DISCORD_TOKEN" in result.stderr and "SLACK_BOT_TOKEN" in result.stderr


def test_console_without_a_key_says_what_to_set(tmp_path: Path) -> None:
    result = grokbot("console", cwd=tmp_path)
    assert result.returncode != 0
    assert "XAI_API_KEY" in result.stderr


def test_invalid_configuration_is_a_message_not_a_traceback(tmp_path: Path) -> None:
    result = grokbot("migrate", cwd=tmp_path, env={"GROKBOT_TIMEZONE": "Nowhere/Land"})
    assert result.returncode == 2
    assert "GROKBOT_TIMEZONE" in result.stderr
    assert "Traceback" not in result.stderr


def test_usage_rejects_a_bad_date(tmp_path: Path) -> None:
    assert grokbot("migrate", cwd=tmp_path).returncode == 0
    result = grokbot("usage", "--since", "yesterday", cwd=tmp_path)
    assert result.returncode == 2
    assert "YYYY-MM-DD" in result.stderr


# Every command that opens the database, with what it needs to get that far (`check` goes on to
# xAI and Slack: on loopback, where nobody answers).
DATABASE_COMMANDS = ("migrate", "usage", "check", "console", "run")
NOWHERE = "http://127.0.0.1:1"  # nobody listens there
GETS_THAT_FAR = {
    "XAI_API_KEY": "xai-test",
    "XAI_BASE_URL": f"{NOWHERE}/v1",
    "SLACK_BOT_TOKEN": "xoxb-test",
    "SLACK_SIGNING_SECRET": "s",
    "SLACK_API_URL": f"{NOWHERE}/api/",
}


def sqlite_in(folder: Path) -> dict[str, str]:
    return {**GETS_THAT_FAR, "DATABASE_URL": f"sqlite+aiosqlite:///{folder / 'grokbot.db'}"}


def assert_told(result: subprocess.CompletedProcess[str], command: str, *words: str) -> None:
    """A message naming the problem, no traceback; exit 1 for check's report, else 2."""
    assert result.returncode == (1 if command == "check" else 2), result.stderr
    told = result.stdout + result.stderr
    assert "Traceback" not in told
    for word in words:
        assert word in told, told


def test_usage_on_a_database_never_migrated_names_migrate_and_leaves_no_file(tmp_path: Path) -> None:
    result = grokbot("usage", cwd=tmp_path)
    assert_told(result, "usage", "no grokbot tables", "grokbot migrate")
    assert len(result.stderr.splitlines()) == 1
    assert not list(tmp_path.iterdir())  # no empty grokbot.db left behind


def test_check_on_a_database_without_tables_says_so_and_names_migrate(tmp_path: Path) -> None:
    result = grokbot("check", cwd=tmp_path)
    assert result.returncode == 1
    assert "✗ database reachable (sqlite) but it has no grokbot tables yet: run `grokbot migrate`" in (
        result.stdout
    )
    assert "✓ database" not in result.stdout
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("command", DATABASE_COMMANDS)
def test_a_sqlite_file_in_a_missing_folder_is_a_message(tmp_path: Path, command: str) -> None:
    missing = tmp_path / "no" / "such" / "folder"
    result = grokbot(command, cwd=tmp_path, env=sqlite_in(missing))
    assert_told(result, command, f"the folder {missing} of the SQLite database does not exist")
    assert not (tmp_path / "no").exists()


@pytest.fixture
def read_only_folder(tmp_path: Path) -> Iterator[tuple[Path, list[str]]]:
    """A folder this process's children cannot write in, and the command prefix that makes it so:
    for root (who ignores permission bits), a read-only bind mount in a private mount namespace."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    if os.geteuid() != 0:
        folder.chmod(0o555)
        yield folder, []
        folder.chmod(0o755)
        return
    script = 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" "$0" && exec "$@"'
    wrap = ["unshare", "--mount", "sh", "-c", script, str(folder)]
    probe = subprocess.run([*wrap, "touch", str(folder / "probe")], capture_output=True, text=True)
    if "Read-only file system" not in probe.stderr:
        pytest.skip(f"cannot make a read-only folder for root here: {probe.stderr.strip()!r}")
    yield folder, wrap


@pytest.mark.parametrize("command", DATABASE_COMMANDS)
def test_a_sqlite_file_in_a_read_only_folder_is_a_message(
    tmp_path: Path, read_only_folder: tuple[Path, list[str]], command: str
) -> None:
    folder, wrap = read_only_folder
    result = grokbot(command, cwd=tmp_path, env=sqlite_in(folder), wrap=wrap)
    assert_told(result, command, f"SQLite cannot write in {folder}", "read-only")
    assert not list(folder.iterdir())


async def grokbot_check(env: dict[str, str], cwd: Path) -> tuple[int, str]:
    """`grokbot check` as a process (the fakes answer from this test's loop meanwhile)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DISCORD_", "SLACK_", "XAI_"))}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "check",
        cwd=cwd, env={**base, **env}, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    assert "Traceback" not in stderr.decode(), stderr.decode()
    assert process.returncode is not None
    return process.returncode, stdout.decode()


async def test_check_composes_the_xai_slack_and_discord_checks(fake_xai: FakeXAI, tmp_path: Path) -> None:
    assert grokbot("migrate", cwd=tmp_path).returncode == 0
    async with FakeSlack() as slack, FakeDiscord() as discord:
        env = {
            "XAI_API_KEY": fake_xai.api_key,
            "XAI_BASE_URL": fake_xai.base_url,
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_APP_TOKEN": APP_TOKEN,
            "SLACK_API_URL": slack.api_url,
            "DISCORD_TOKEN": discord.token,
            "DISCORD_API_BASE_URL": discord.rest_url,
        }
        status, report = await grokbot_check(env, tmp_path)
        assert status == 0, report
        assert "✓ xAI API key" in report and "✓ the endpoint serves the Responses API" in report
        assert "✓ Slack bot token: workspace Fake Workspace" in report
        assert "✓ Slack Socket Mode: SLACK_APP_TOKEN opens a connection" in report
        assert "✓ Discord bot token: bot user grokbot" in report
        assert "the Message Content intent is on" in report
        discord.message_content_enabled = False  # switched off in the portal
        status, report = await grokbot_check(env, tmp_path)
    assert status == 1
    assert "✗ Discord application grokbot: the Message Content intent is off" in report
    assert "  → Turn on" in report
    for secret in (fake_xai.api_key, BOT_TOKEN, APP_TOKEN, discord.token):
        assert secret not in report
