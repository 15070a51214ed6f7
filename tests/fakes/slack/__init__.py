"""A fake Slack: the Web API the Slack adapter uses, as a real aiohttp server on 127.0.0.1, and a
sender of signed Events API / slash-command / interactivity requests to a Bolt app.

    async with FakeSlack() as slack:              # slack.api_url == "http://127.0.0.1:<port>/api/"
        slack.add_user("U1", "ana"); slack.add_channel("C1", "general")
        sender = slack.sender("http://127.0.0.1:3000/slack/events")
        await sender.mention("C1", "U1", "hello")  # stores the user message, sends app_mention + message
        slack.thread("C1", ts)                     # the parent and replies, as FakeMessage values
        slack.rate_limited                         # how many 429s were served
        await slack.wait_until(lambda: slack.calls_to("chat.update"))  # re-checked at each call

Behaviour follows Slack's documentation: every method answers HTTP 200 with `{"ok": false, "error"}`
on failure (invalid_auth, channel_not_found, msg_too_long beyond 4,000 chars of `text` or 12,000 of
`markdown_text`, invalid_blocks, message_not_in_streaming_state, ...), arguments come from the query
string, a form body or a JSON body (JSON needs the token in the Authorization header), and rate limits
are per method per workspace over a 60 s window (Tier 2: 20, Tier 3: 50, Tier 4: 100 per minute),
with chat.postMessage (and chat.startStream, which posts a message) at about 1 per second per
channel with a short burst. A request over a limit gets HTTP 429 with `Retry-After`. With
`history_limited`, conversations.history and .replies follow Slack's 2025 limit for non-Marketplace
apps: one request per `history_window` (60 s) and 15 messages a page at most.

Socket Mode (`socket_mode.py`): `apps.connections.open` with the app token returns a WebSocket URL
on the same server; `await slack.socket_mode.connected()`, then `await slack.socket_mode.deliver(
envelope)` sends an envelope and returns the app's acknowledgement.
"""

from __future__ import annotations

from tests.fakes.slack.sender import Delivery, EventSender, envelope
from tests.fakes.slack.socket_mode import FakeSocketMode
from tests.fakes.slack.values import (
    APP_ID,
    APP_TOKEN,
    BOT_ID,
    BOT_TOKEN,
    BOT_USER_ID,
    MARKDOWN_LIMIT,
    SIGNING_SECRET,
    TEAM_ID,
    TEXT_LIMIT,
    Call,
    FakeChannel,
    FakeFile,
    FakeMessage,
    FakeUser,
    sign,
)
from tests.fakes.slack.web_api import FakeSlack

__all__ = [
    "APP_ID",
    "APP_TOKEN",
    "BOT_ID",
    "BOT_TOKEN",
    "BOT_USER_ID",
    "MARKDOWN_LIMIT",
    "SIGNING_SECRET",
    "TEAM_ID",
    "TEXT_LIMIT",
    "Call",
    "Delivery",
    "EventSender",
    "FakeChannel",
    "FakeFile",
    "FakeMessage",
    "FakeSlack",
    "FakeSocketMode",
    "FakeUser",
    "envelope",
    "sign",
]
