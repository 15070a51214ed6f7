"""The command line as an operator meets it: help, migrate, run without credentials, bad config."""

from __future__ import annotations

import argparse
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from bot.__main__ import COMMANDS as HANDLERS
from bot.__main__ import build_parser

COMMANDS = ("run", "console", "migrate", "check", "usage")  # the contract's, as far as built


def subcommands() -> dict[str, argparse.ArgumentParser]:
    """The parser's own subcommands: what `grokbot --help` is made from."""
    [choices] = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(choices.choices)


def grokbot(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DISCORD_", "SLACK_", "XAI_"))}
    base.pop("DATABASE_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=cwd,
        env={**base, **(env or {})},
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
