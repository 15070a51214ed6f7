"""`grokbot run` as an operator runs it: a real process serving Slack events, health, readiness
and metrics on $PORT, answering through the fakes, and stopping cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from pathlib import Path

import aiohttp

from tests.fakes.discord import FakeDiscord
from tests.fakes.slack import BOT_TOKEN, SIGNING_SECRET, FakeSlack
from tests.fakes.xai import FakeXAI, ScriptedResponse


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def wait_for_status(http: aiohttp.ClientSession, url: str, status: int, *, seconds: float = 20) -> str:
    deadline = asyncio.get_running_loop().time() + seconds
    last = ""
    while asyncio.get_running_loop().time() < deadline:
        try:
            async with http.get(url) as response:
                last = await response.text()
                if response.status == status:
                    return last
        except aiohttp.ClientConnectionError:
            pass
        await asyncio.sleep(0.1)
    raise AssertionError(f"{url} never answered {status}; last: {last!r}")


async def test_grokbot_run_serves_slack_and_health_then_stops_on_sigterm(
    fake_xai: FakeXAI, tmp_path: Path
) -> None:
    async with FakeSlack() as slack:
        slack.add_user("U1", "ana")
        slack.add_channel("C1", "general")
        port = free_port()
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("DISCORD_", "SLACK_", "XAI_"))},
            "XAI_API_KEY": fake_xai.api_key,
            "XAI_BASE_URL": fake_xai.base_url,
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "SLACK_API_URL": slack.api_url,
            "PORT": str(port),
            "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'run.db'}",
        }
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "run",
            cwd=tmp_path, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        try:
            async with aiohttp.ClientSession() as http:
                assert "ok" in (await wait_for_status(http, f"{base}/healthz", 200)).lower()
                ready = await wait_for_status(http, f"{base}/readyz", 200)
                for dependency in ("database", "scheduler", "slack"):
                    assert dependency in ready

                fake_xai.queue_response(ScriptedResponse(text="Hello from Grok over Slack."))
                sender = slack.sender(f"{base}/slack/events")
                question, deliveries = await sender.mention("C1", "U1", "hello there")
                assert all(d.status == 200 for d in deliveries)
                for _ in range(200):
                    answers = slack.bot_messages("C1", thread_ts=question.ts)
                    if answers and answers[-1].content.startswith("Hello from Grok over Slack."):
                        break
                    await asyncio.sleep(0.05)
                else:
                    raise AssertionError(f"no answer in the thread: {slack.bot_messages('C1')}")

                async with http.get(f"{base}/metrics") as response:
                    metrics = await response.text()
                assert "grokbot_http_requests" in metrics
        finally:
            process.send_signal(signal.SIGTERM)
            returncode = await asyncio.wait_for(process.wait(), timeout=30)
            stdout, stderr = await process.communicate()
        assert returncode == 0, stderr.decode()[-2000:]
        logs = stdout.decode() + stderr.decode()
        assert f"grokbot is running on port {port} (instance" in logs
        # uvloop is a dependency everywhere but Windows
        assert f"{'asyncio' if sys.platform == 'win32' else 'uvloop'} event loop)" in logs
        assert BOT_TOKEN not in logs and SIGNING_SECRET not in logs and fake_xai.api_key not in logs


def discord_env(fake_xai: FakeXAI, discord: FakeDiscord, tmp_path: Path, port: int) -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DISCORD_", "SLACK_", "XAI_"))},
        "XAI_API_KEY": fake_xai.api_key,
        "XAI_BASE_URL": fake_xai.base_url,
        "DISCORD_TOKEN": discord.token,
        "DISCORD_API_BASE_URL": discord.rest_url,
        "DISCORD_GATEWAY_URL": discord.gateway_url,
        "DISCORD_GUILD_IDS": ",".join(discord.guilds),
        "PORT": str(port),
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'run.db'}",
    }


async def test_grokbot_run_answers_a_discord_mention_then_stops_on_sigterm(
    fake_xai: FakeXAI, tmp_path: Path
) -> None:
    async with FakeDiscord() as discord:
        guild = discord.add_guild("Grok lab")
        general = discord.add_channel(guild, "general")
        alice = discord.add_user("alice", guild_id=guild)
        port = free_port()
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "run",
            cwd=tmp_path, env=discord_env(fake_xai, discord, tmp_path, port),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            async with aiohttp.ClientSession() as http:
                ready = await wait_for_status(http, f"http://127.0.0.1:{port}/readyz", 200)
                assert "discord" in ready
            fake_xai.queue_response(ScriptedResponse(text="Hello from Grok on Discord."))
            asked = await discord.user_message(general, alice, "hello there", mention_bot=True)
            await discord.wait_until(
                lambda: any(
                    m["content"] == "Hello from Grok on Discord."
                    and (m.get("message_reference") or {}).get("message_id") == asked["id"]
                    for m in discord.bot_messages(general)
                ),
                within=20,
            )
        finally:
            process.send_signal(signal.SIGTERM)
            returncode = await asyncio.wait_for(process.wait(), timeout=30)
            stdout, stderr = await process.communicate()
        assert returncode == 0, stderr.decode()[-2000:]
        logs = stdout.decode() + stderr.decode()
        assert "oauth2/authorize" in logs  # the invite URL is logged at start
        assert discord.token not in logs and fake_xai.api_key not in logs


async def test_grokbot_run_explains_a_missing_message_content_intent(
    fake_xai: FakeXAI, tmp_path: Path
) -> None:
    async with FakeDiscord(message_content_enabled=False) as discord:
        discord.add_guild("Grok lab")
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "run",
            cwd=tmp_path, env=discord_env(fake_xai, discord, tmp_path, free_port()),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        _stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 2
    message = stderr.decode()
    assert "grokbot cannot start" in message and "Message Content" in message
    assert "Traceback" not in message


async def test_a_second_process_on_one_sqlite_file_is_refused(fake_xai: FakeXAI, tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from bot.db import create_engine, session_factory, upgrade_async
    from bot.jobs.timer import beat

    url = f"sqlite+aiosqlite:///{tmp_path / 'run.db'}"
    await upgrade_async(url)
    engine = create_engine(url)
    # A live process of this host (this test's own) beat a moment ago.
    running = f"{socket.gethostname()[:40]}-{os.getpid()}-abc123"
    await beat(session_factory(engine), instance=running, component="deferred", now=datetime.now(UTC))
    await engine.dispose()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DISCORD_", "SLACK_", "XAI_"))},
        "XAI_API_KEY": fake_xai.api_key,
        "XAI_BASE_URL": fake_xai.base_url,
        "SLACK_BOT_TOKEN": "xoxb-never-used",
        "SLACK_SIGNING_SECRET": "never-used",
        "SLACK_API_URL": "http://127.0.0.1:9/api/",
        "PORT": str(free_port()),
        "DATABASE_URL": url,
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "run",
        cwd=tmp_path, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 2
    assert "another grokbot process" in stderr.decode() and "PostgreSQL" in stderr.decode()


def test_a_heartbeat_from_a_dead_local_process_does_not_count() -> None:
    from bot.services import _alive

    host = socket.gethostname()[:40]
    dead = 2**22 + 12345  # above the default pid_max: no such process
    assert _alive(f"{host}-{os.getppid()}-abc123")  # a live process of this host
    assert not _alive(f"{host}-{dead}-abc123")
    assert _alive(f"another-host-{dead}-abc123")  # another machine: cannot tell, so it counts
    # Another instance id with this process's own pid: a previous run (a container restarted as
    # pid 1 again after a crash), not a live process.
    assert not _alive(f"{host}-{os.getpid()}-abc123")
