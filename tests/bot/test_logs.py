"""Logs: the JSON format for collectors, secrets masked in every format, and a running service
that logs no routine chatter (scheduler polls, alembic plugins, HTTP requests) and no warning."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
from pathlib import Path

import aiohttp

from bot.logs import JsonFormatter, TextFormatter, drop_unavoidable, secrets_of
from bot.settings import Settings
from tests.fakes.discord import FakeDiscord
from tests.fakes.slack import BOT_TOKEN, SIGNING_SECRET, FakeSlack
from tests.fakes.xai import FakeXAI
from tests.test_run import discord_env, free_port, wait_for_status

SECRET = "xai-very-secret-key-42"


def record(name: str, level: int, message: str, *args: object) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, message, args, None)


def test_json_lines_carry_time_level_logger_message_and_exception_without_secrets() -> None:
    formatter = JsonFormatter([SECRET])
    try:
        raise RuntimeError(f"refused {SECRET}")
    except RuntimeError:
        failing = record("bot.engine", logging.ERROR, "answer %s failed", "e1")
        failing.exc_info = sys.exc_info()
    line = formatter.format(failing)
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["level"] == "ERROR" and entry["logger"] == "bot.engine"
    assert entry["message"] == "answer e1 failed"
    assert entry["timestamp"].endswith("+00:00")
    assert "RuntimeError: refused ***" in entry["exception"]
    assert SECRET not in line


def test_text_lines_mask_secrets_too() -> None:
    line = TextFormatter([SECRET]).format(record("x", logging.WARNING, "key %s", SECRET))
    assert line.endswith("WARNING x: key ***") and SECRET not in line


def test_the_secrets_are_every_token_key_and_the_database_password() -> None:
    settings = Settings(
        xai_api_key=SECRET,
        slack_bot_token="xoxb-token-1",
        discord_token="discord-token-1",
        database_url="postgresql+asyncpg://bot:pg-password-1@db/grokbot",
    )
    assert set(secrets_of(settings)) == {SECRET, "xoxb-token-1", "discord-token-1", "pg-password-1"}


def test_only_the_unavoidable_library_warnings_are_dropped() -> None:
    token_unused = "As you gave `client` as well, `token` will be unused."
    assert not drop_unavoidable(record("slack_bolt", logging.WARNING, token_unused))
    assert not drop_unavoidable(
        record("discord.client", logging.WARNING, "PyNaCl is not installed, voice will NOT be supported")
    )
    assert drop_unavoidable(record("slack_bolt", logging.WARNING, "Something else went wrong"))
    assert drop_unavoidable(record("slack_bolt", logging.ERROR, token_unused))


async def test_a_running_service_logs_json_without_chatter_warnings_or_secrets(
    fake_xai: FakeXAI, tmp_path: Path
) -> None:
    async with FakeDiscord() as discord, FakeSlack() as slack:
        discord.add_guild("Grok lab")
        port = free_port()
        env = {
            **discord_env(fake_xai, discord, tmp_path, port),
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "SLACK_API_URL": slack.api_url,
            "GROKBOT_LOG_FORMAT": "json",
        }
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "run",
            cwd=tmp_path, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            async with aiohttp.ClientSession() as http:
                # Ready means the scheduler has polled and beaten: its lines would be there.
                await wait_for_status(http, f"http://127.0.0.1:{port}/readyz", 200)
        finally:
            process.send_signal(signal.SIGTERM)
            _stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=30)
    lines = stderr.decode().splitlines()
    entries = [json.loads(line) for line in lines]  # every line is one JSON object
    assert any(e["message"].startswith("grokbot is running") for e in entries)
    assert not [e for e in entries if e["level"] != "INFO"], entries
    quiet = ("apscheduler", "alembic", "httpx", "httpcore")
    assert not [e for e in entries if e["logger"].startswith(quiet)], entries
    for secret in (fake_xai.api_key, BOT_TOKEN, SIGNING_SECRET, discord.token):
        assert secret not in stderr.decode()
