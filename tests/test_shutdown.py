"""Deploys and crashes leave no half-answers (issue 18): `grokbot run` as a real process against the
loopback fakes, stopped with SIGTERM while five answers stream (Slack in native-stream and in
chat.update mode, Discord), and killed with SIGKILL mid-answer then started again."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.wording import INTERRUPTED
from tests.fakes.discord import FakeDiscord
from tests.fakes.slack import BOT_TOKEN, BOT_USER_ID, SIGNING_SECRET, FakeMessage, FakeSlack
from tests.fakes.xai import FakeXAI, ScriptedReply
from tests.test_run import discord_env, free_port, wait_for_status

GRACE_S = 3.0
USER, CHANNEL = "U0ANA0001", "C0GENERAL"
WORDS = " ".join(f"word{i}" for i in range(40))  # what each answer says after its first words
NOTE = INTERRUPTED.split(",")[0]  # "Grok was restarted while writing this answer"


def slack_env(fake_xai: FakeXAI, slack: FakeSlack, tmp_path: Path, port: int) -> dict[str, str]:
    return {
        **{
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("DISCORD_", "SLACK_", "XAI_", "GROKBOT_"))
        },
        "XAI_API_KEY": fake_xai.api_key,
        "XAI_BASE_URL": fake_xai.base_url,
        "GROKBOT_XAI_API": "chat",  # the replies are scripted on Chat Completions
        "GROKBOT_EDIT_INTERVAL_S": "0.2",
        "GROKBOT_SHUTDOWN_GRACE_S": str(GRACE_S),
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": slack.api_url,
        "PORT": str(port),
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'run.db'}",
    }


async def start(env: dict[str, str], tmp_path: Path) -> asyncio.subprocess.Process:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "run",
        cwd=tmp_path, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    async with aiohttp.ClientSession() as http:
        await wait_for_status(http, f"http://127.0.0.1:{env['PORT']}/readyz", 200, seconds=30)
    return process


async def stopped(process: asyncio.subprocess.Process, *, within: float) -> tuple[int, str]:
    returncode = await asyncio.wait_for(process.wait(), timeout=within)
    stdout, stderr = await process.communicate()
    return returncode, stdout.decode() + stderr.decode()


def rows(tmp_path: Path, query: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(tmp_path / "run.db") as db:
        return list(db.execute(query).fetchall())


def held_reply(index: int, hold: asyncio.Event) -> ScriptedReply:
    """An answer whose first words come at once and whose rest waits for `hold`."""
    return ScriptedReply(text=f"Answer {index} begins. {WORDS}", chunk_chars=8, holds=((3, hold),))


async def until(check: Callable[[], object], *, within: float = 20.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        await asyncio.sleep(0.05)


def slack_answers(slack: FakeSlack, questions: list[FakeMessage]) -> list[FakeMessage]:
    """The bot's answer in each question's thread (the last message there), or fewer while missing."""
    found = []
    for question in questions:
        answers = [m for m in slack.bot_messages(CHANNEL, thread_ts=question.ts) if m.content.strip()]
        if answers and answers[-1].content.startswith("Answer"):
            found.append(answers[-1])
    return found


@pytest.mark.parametrize("mode", ["native", "edits"])
async def test_sigterm_lets_answers_finish_within_grace_and_closes_the_rest_on_slack(
    fake_xai: FakeXAI, tmp_path: Path, mode: str
) -> None:
    async with FakeSlack(rate_limits=False) as slack:
        slack.add_user(USER, "ana")
        slack.add_channel(CHANNEL, "general")
        if mode == "edits":  # Slack offers this workspace no streams: answers are posted and edited
            slack.fail["chat.startStream"].append("unknown_method")
        env = slack_env(fake_xai, slack, tmp_path, free_port())
        base = f"http://127.0.0.1:{env['PORT']}"
        quick, slow = asyncio.Event(), asyncio.Event()
        for index in range(5):
            fake_xai.queue_reply(held_reply(index, quick if index < 2 else slow))
        process = await start(env, tmp_path)
        try:
            async with aiohttp.ClientSession() as http:
                sender = slack.sender(f"{base}/slack/events", session=http)
                questions = [(await sender.mention(CHANNEL, USER, f"question {i}"))[0] for i in range(5)]
                await until(lambda: len(slack_answers(slack, questions)) == 5)
                if mode == "native":
                    assert all(m.streaming for m in slack_answers(slack, questions))

                process.send_signal(signal.SIGTERM)
                signalled = time.monotonic()
                await wait_for_status(http, f"{base}/readyz", 503, seconds=2)
                # A delivery during the drain is not acknowledged, so Slack sends it again.
                late_question = slack.post_user_message(CHANNEL, USER, f"<@{BOT_USER_ID}> late question")
                late = sender.envelope(mention_event(slack, late_question), event_id="Ev0LATE0001")
                drained = await sender.deliver(late)
                assert drained.status == 503 and "Retry-After" in drained.headers
                quick.set()  # two answers finish within the grace period
                returncode, logs = await stopped(process, within=GRACE_S + 5 + 5)
                took = time.monotonic() - signalled
        finally:
            if process.returncode is None:
                process.kill()
        assert returncode == 0, logs[-3000:]
        assert took < GRACE_S + 5, took
        answers = slack_answers(slack, questions)
        complete = [m for m in answers if m.content.rstrip().endswith("word39")]
        cut = [m for m in answers if NOTE in m.content]
        assert len(complete) == 2 and len(cut) == 3, [m.content[-80:] for m in answers]
        for message in cut:  # what was shown kept, the note at its end, no in-progress marker
            assert message.content.startswith("Answer ") and message.content.rstrip().endswith(
                "the whole answer."
            )
            assert "▍" not in message.content
        assert not any(m.streaming for m in slack.bot_messages(CHANNEL))  # every stream stopped
        if mode == "native":
            assert len(slack.calls_to("chat.stopStream")) >= 5
        # Charged: the two complete answers and the three cut ones, each with its turn recorded.
        assert rows(tmp_path, "SELECT count(*) FROM usage_event WHERE kind = 'chat'") == [(5,)]
        finishes = rows(tmp_path, "SELECT finish_reason FROM turn WHERE role = 'assistant'")
        assert sorted(f for (f,) in finishes) == ["interrupted"] * 3 + ["stop"] * 2
        assert rows(tmp_path, "SELECT count(*) FROM open_answer") == [(0,)]
        assert "3 answer(s) cut short" in logs

        # Slack sends the drained delivery again: the restarted bot answers it, once.
        fake_xai.queue_reply(ScriptedReply(text="Answer to the late question."))
        process = await start(env, tmp_path)
        try:
            async with aiohttp.ClientSession() as http:
                sender = slack.sender(f"{base}/slack/events", session=http)
                for retry in (1, 2):
                    delivery = await sender.deliver(late, retry_num=retry)
                    assert delivery.status == 200
                await until(lambda: bool(slack.bot_messages(CHANNEL, thread_ts=late_question.ts)))
                await asyncio.sleep(0.5)  # a second answer would be on its way by now
            answered = slack.bot_messages(CHANNEL, thread_ts=late_question.ts)
            assert [m.content for m in answered] == ["Answer to the late question."]
        finally:
            process.send_signal(signal.SIGTERM)
            returncode, logs = await stopped(process, within=GRACE_S + 10)
        assert returncode == 0, logs[-3000:]


def mention_event(slack: FakeSlack, question: FakeMessage) -> dict[str, Any]:
    """The app_mention event Slack sends for `question`."""
    return {
        "type": "app_mention", "channel": question.channel, "user": question.user,
        "text": question.text, "ts": question.ts, "team": slack.team_id,
    }  # fmt: skip


@pytest.mark.parametrize("mode", ["native", "edits"])
async def test_an_answer_left_by_a_killed_process_is_closed_by_the_next_on_slack(
    fake_xai: FakeXAI, tmp_path: Path, mode: str
) -> None:
    async with FakeSlack(rate_limits=False) as slack:
        slack.add_user(USER, "ana")
        slack.add_channel(CHANNEL, "general")
        if mode == "edits":
            slack.fail["chat.startStream"].append("unknown_method")
        env = slack_env(fake_xai, slack, tmp_path, free_port())
        never = asyncio.Event()
        fake_xai.queue_reply(held_reply(0, never))
        process = await start(env, tmp_path)
        try:
            async with aiohttp.ClientSession() as http:
                sender = slack.sender(f"http://127.0.0.1:{env['PORT']}/slack/events", session=http)
                question, _ = await sender.mention(CHANNEL, USER, "a question")
                await until(lambda: len(slack_answers(slack, [question])) == 1)
                await until(lambda: rows(tmp_path, "SELECT count(*) FROM open_answer") == [(1,)])
        finally:
            process.kill()  # SIGKILL: nothing is closed
            await process.wait()
        (answer,) = slack_answers(slack, [question])
        shown = answer.content
        assert NOTE not in shown and (answer.streaming if mode == "native" else shown.endswith("▍"))

        process = await start(env, tmp_path)  # its first heartbeat looks for answers left open
        try:
            await until(lambda: NOTE in answer.content)
            assert not answer.streaming
            assert answer.content.startswith(shown.removesuffix("▍").rstrip())
            assert "▍" not in answer.content
            assert rows(tmp_path, "SELECT count(*) FROM open_answer") == [(0,)]
        finally:
            process.send_signal(signal.SIGTERM)
            returncode, logs = await stopped(process, within=GRACE_S + 10)
        assert returncode == 0, logs[-3000:]
        assert "closed 1 answer(s) left in progress" in logs


async def test_sigterm_and_sigkill_on_discord(fake_xai: FakeXAI, tmp_path: Path) -> None:
    async with FakeDiscord() as discord:
        guild = discord.add_guild("Grok lab")
        general = discord.add_channel(guild, "general")
        alice = discord.add_user("alice", guild_id=guild)
        env = discord_env(fake_xai, discord, tmp_path, free_port())
        env |= {"GROKBOT_XAI_API": "chat", "GROKBOT_EDIT_INTERVAL_S": "0.2"}
        env["GROKBOT_SHUTDOWN_GRACE_S"] = str(GRACE_S)
        quick, slow = asyncio.Event(), asyncio.Event()
        for index in range(5):
            fake_xai.queue_reply(held_reply(index, quick if index < 2 else slow))
        process = await start(env, tmp_path)

        def answers() -> list[dict[str, Any]]:
            return [m for m in discord.bot_messages(general) if m["content"].startswith("Answer")]

        try:
            for index in range(5):
                await discord.user_message(general, alice, f"question {index}", mention_bot=True)
            await discord.wait_until(lambda: len(answers()) == 5, within=20)
            process.send_signal(signal.SIGTERM)
            signalled = time.monotonic()
            # The gateway closes at once, while the answers in flight go on.
            await discord.wait_until(lambda: all(s.ws is None for s in discord.sessions.values()), within=2)
            assert process.returncode is None
            quick.set()
            returncode, logs = await stopped(process, within=GRACE_S + 10)
            took = time.monotonic() - signalled
        finally:
            if process.returncode is None:
                process.kill()
        assert returncode == 0, logs[-3000:]
        assert took < GRACE_S + 5, took
        contents = [m["content"] for m in answers()]
        assert sum(c.rstrip().endswith("word39") for c in contents) == 2, contents
        assert sum(NOTE in c for c in contents) == 3, contents
        assert not any(c.endswith("⚪") for c in contents)  # no in-progress marker left
        assert rows(tmp_path, "SELECT count(*) FROM usage_event WHERE kind = 'chat'") == [(5,)]

        # SIGKILL mid-answer, then a restart closes it.
        fake_xai.queue_reply(held_reply(5, asyncio.Event()))
        process = await start(env, tmp_path)
        try:
            await discord.user_message(general, alice, "one more", mention_bot=True)
            await discord.wait_until(
                lambda: any(c["content"].startswith("Answer 5") for c in answers()), within=20
            )
            await until(lambda: rows(tmp_path, "SELECT count(*) FROM open_answer") == [(1,)])
        finally:
            process.kill()
            await process.wait()
        (left,) = [m for m in answers() if m["content"].startswith("Answer 5")]
        assert left["content"].endswith("⚪")
        process = await start(env, tmp_path)
        try:
            await until(lambda: NOTE in discord.messages[left["id"]]["content"])
            assert not discord.messages[left["id"]]["content"].endswith("⚪")
        finally:
            process.send_signal(signal.SIGTERM)
            returncode, logs = await stopped(process, within=GRACE_S + 10)
        assert returncode == 0, logs[-3000:]


async def test_sigterm_closes_the_console_answer_in_flight(fake_xai: FakeXAI, tmp_path: Path) -> None:
    fake_xai.queue_reply(held_reply(0, asyncio.Event()))
    env = {
        **{
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("DISCORD_", "SLACK_", "XAI_", "GROKBOT_"))
        },
        "XAI_API_KEY": fake_xai.api_key,
        "XAI_BASE_URL": fake_xai.base_url,
        "GROKBOT_XAI_API": "chat",
        "GROKBOT_SHUTDOWN_GRACE_S": "1",
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'run.db'}",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "console",
        cwd=tmp_path, env=env,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stdin is not None and process.stdout is not None
    try:
        process.stdin.write(b"a question\n")  # stdin stays open: the console waits for more
        await process.stdin.drain()
        shown = b""
        while b"Answer 0 begins" not in shown:
            shown += await asyncio.wait_for(process.stdout.read(100), timeout=20)
        process.send_signal(signal.SIGTERM)
        rest, stderr = await asyncio.wait_for(process.communicate(), timeout=1 + 5)
    finally:
        if process.returncode is None:
            process.kill()
    output = (shown + rest).decode()
    assert process.returncode == 0, stderr.decode()[-2000:]
    assert NOTE in output and output.index("Answer 0 begins") < output.index(NOTE)
    assert rows(tmp_path, "SELECT finish_reason FROM turn WHERE role = 'assistant'") == [("interrupted",)]
    assert rows(tmp_path, "SELECT count(*) FROM usage_event WHERE kind = 'chat'") == [(1,)]
