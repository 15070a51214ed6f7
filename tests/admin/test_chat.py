"""The chat side of the admin pages: the `admin` command, the usage picture, and xAI's credits
refusals (the pause, the user's message, the admins' direct messages once an hour)."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import re
from datetime import timedelta

from PIL import Image as PILImage

from bot.admin import XaiWatch
from bot.admin.signin import SignIns
from bot.db import Sessions
from bot.grok import GrokClient
from bot.platform import Author, Command, Place
from tests.bot.engine_env import build
from tests.fakes.platform import DEFAULT_CAPABILITIES, FakePlatform
from tests.fakes.xai import FakeXAI

SLACK = Place("slack", "T1", "C1", "")
OWNER = Author("UOWNER", "owner", is_admin=True)  # a workspace admin, vouched for by Slack
OPERATOR = Author("UADMIN", "operator")  # in GROKBOT_ADMINS
NOBODY = Author("U5", "nobody")
CREDITS = {
    "code": "permission-denied",
    "error": "Your team has either used all available credits or reached its monthly spending limit.",
}


def _private(platform: FakePlatform) -> str:
    message = platform.last
    assert message.private_to, "the answer should be private"
    return message.text


async def test_admin_answers_an_admin_privately_with_a_one_time_link(
    fake_xai: FakeXAI, grok: GrokClient, sessions: Sessions
) -> None:
    env = build(fake_xai, grok, sessions, platform=FakePlatform(name="slack"), grokbot_admins="slack:UADMIN",
                grokbot_public_url="https://bot.example.com/")  # fmt: skip
    signins = SignIns(sessions, clock=env.clock)
    for author, workspace in ((OPERATOR, ""), (OWNER, "T1")):
        await env.say(author=author, place=SLACK, command=Command("admin"))
        text = _private(env.platform)
        found = re.search(r"https://bot\.example\.com/admin/signin/([\w-]+)", text)
        assert found is not None and "10 minutes" in text
        session = await signins.redeem(found.group(1))
        assert session is not None and await signins.redeem(found.group(1)) is None
        admin = await signins.admin_for(session)
        assert admin is not None and (admin.user_id, admin.workspace) == (author.id, workspace)

    await env.say(author=NOBODY, place=SLACK, command=Command("admin"))
    assert env.platform.last.text == "Only admins can open the admin pages."


async def test_admin_says_what_to_set_without_a_public_url(
    fake_xai: FakeXAI, grok: GrokClient, sessions: Sessions
) -> None:
    env = build(fake_xai, grok, sessions, platform=FakePlatform(name="slack"), grokbot_admins="slack:UADMIN")
    await env.say(author=OPERATOR, place=SLACK, command=Command("admin"))
    text = _private(env.platform)
    assert "GROKBOT_PUBLIC_URL" in text and "http" in text and "/admin/" not in text


async def test_usage_comes_with_a_picture_where_files_can_be_private(
    fake_xai: FakeXAI, grok: GrokClient, sessions: Sessions
) -> None:
    private = dataclasses.replace(DEFAULT_CAPABILITIES, private_files=True)
    env = build(fake_xai, grok, sessions, platform=FakePlatform(name="slack", capabilities=private))
    await env.say("hello", place=SLACK)  # one charge today
    await env.say("usage", place=SLACK)
    message = env.platform.last
    assert message.images and "Today:" in message.text
    picture = message.images[0]
    assert picture.mime_type == "image/png" and picture.filename.endswith(".png")
    with PILImage.open(io.BytesIO(picture.data)) as image:
        assert image.size == (800, 320)
        assert len(image.convert("RGB").getcolors(1 << 16) or ()) > 2  # drawn, not blank

    slack = build(fake_xai, grok, sessions, platform=FakePlatform(name="slack"))  # files are public
    await slack.say("usage", place=SLACK)
    assert not slack.platform.last.images and slack.platform.last.private_to


async def test_a_credits_refusal_pauses_xai_and_alerts_each_admin_once_an_hour(
    fake_xai: FakeXAI, grok: GrokClient, sessions: Sessions
) -> None:
    platform = FakePlatform(name="slack")
    env = build(fake_xai, grok, sessions, platform=platform, grokbot_admins="slack:UADMIN,slack:UOTHER",
                grokbot_public_url="https://bot.example.com")  # fmt: skip
    watch = XaiWatch(sessions, env.engine.settings, platforms={"slack": platform}, clock=env.clock)
    grok.transport.observer = watch  # as services.grok_client wires it
    fake_xai.fail_next(403, body=CREDITS)

    def told() -> str:  # the asker's answer; the admins' alerts go out beside it, in any order
        answer = [m for m in platform.messages if m.place == SLACK][-1]
        return answer.failed + answer.text

    await env.say("hello", place=SLACK)
    assert "out of credits" in told()
    assert "60 s" in told()
    calls = len(fake_xai.chat_requests())

    await env.say("hello again", place=SLACK)  # paused: xAI is not asked
    assert len(fake_xai.chat_requests()) == calls
    assert "I will not ask xAI again for" in told()
    await watch.drain()
    direct = [m for m in platform.messages if m.place.workspace == "dm"]
    assert sorted(m.private_to for m in direct) == ["UADMIN", "UOTHER"]
    assert "https://bot.example.com/admin/" in direct[0].text

    # Another instance (another watch, same database) within the hour sends nothing more.
    other = XaiWatch(sessions, env.engine.settings, platforms={"slack": platform}, clock=env.clock)
    assert await other.alert() == 0
    env.clock.now += timedelta(hours=1)
    assert await other.alert() == 2


async def test_refusals_are_counted_for_the_overview(
    fake_xai: FakeXAI, grok: GrokClient, sessions: Sessions
) -> None:
    from bot.admin.records import signals

    env = build(fake_xai, grok, sessions)
    watch = XaiWatch(sessions, env.engine.settings, platforms={}, clock=env.clock)
    grok.transport.observer = watch
    fake_xai.fail_next(429, times=2)  # retried, then answered
    await env.say("hello")
    fake_xai.fail_next(403, body=CREDITS)
    await env.say("hello")
    await asyncio.wait_for(watch.drain(), 5)
    seen = await signals(sessions, since=env.clock() - timedelta(hours=1))
    assert seen.counts == {"rate_limited": 2, "credits": 1}
