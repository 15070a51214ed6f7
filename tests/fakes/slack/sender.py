"""What Slack sends to an app: signed Events API, slash-command and interactivity requests over HTTP,
and the event envelope that Socket Mode carries too."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
import urllib.parse
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import aiohttp

from tests.fakes.slack.values import APP_ID, BOT_USER_ID, FakeFile, FakeMessage, sign

if TYPE_CHECKING:
    from tests.fakes.slack.web_api import FakeSlack


def envelope(slack: FakeSlack, event: dict[str, Any], *, event_id: str | None = None) -> dict[str, Any]:
    """The Events API body Slack wraps `event` in (over HTTP, and inside Socket Mode's envelopes)."""
    return {
        "token": "verification-token-unused",
        "team_id": slack.team_id,
        "api_app_id": APP_ID,
        "event": {"event_ts": event.get("ts", slack.next_ts()), **event},
        "type": "event_callback",
        "event_id": event_id or f"Ev{uuid.uuid4().hex[:16].upper()}",  # unique per delivery
        "event_time": int(time.time()),
        "authorizations": [
            {"enterprise_id": None, "team_id": slack.team_id, "user_id": BOT_USER_ID,
             "is_bot": True, "is_enterprise_install": False}
        ],
        "is_ext_shared_channel": False,
    }  # fmt: skip


@dataclass
class Delivery:
    status: int
    body: str
    headers: Mapping[str, str]


class EventSender:
    """Sends what Slack sends to a Bolt app, signed over the exact bytes."""

    def __init__(self, slack: FakeSlack, url: str, session: aiohttp.ClientSession) -> None:
        self.slack = slack
        self.url = url
        self.session = session
        self._event_ids = itertools.count(1)

    def envelope(self, event: dict[str, Any], *, event_id: str | None = None) -> dict[str, Any]:
        return envelope(self.slack, event, event_id=event_id)

    async def post(
        self,
        body: bytes,
        content_type: str,
        *,
        headers: Mapping[str, str] | None = None,
        secret: str | None = None,
    ) -> Delivery:
        timestamp = str(int(time.time()))
        signed = {
            "Content-Type": content_type,
            "X-Slack-Request-Timestamp": timestamp,
            "X-Slack-Signature": sign(secret or self.slack.signing_secret, timestamp, body),
            **(headers or {}),
        }
        async with self.session.post(self.url, data=body, headers=signed) as response:
            return Delivery(response.status, await response.text(), dict(response.headers))

    async def deliver(
        self, envelope: dict[str, Any], *, retry_num: int | None = None, **kwargs: Any
    ) -> Delivery:
        headers = dict(kwargs.pop("headers", {}) or {})
        if retry_num is not None:
            headers |= {"X-Slack-Retry-Num": str(retry_num), "X-Slack-Retry-Reason": "http_timeout"}
        body = json.dumps(envelope).encode()
        return await self.post(body, "application/json", headers=headers, **kwargs)

    def _message_event(self, message: FakeMessage, files: tuple[FakeFile, ...]) -> dict[str, Any]:
        channel = self.slack.channels[message.channel]
        event: dict[str, Any] = {
            "type": "message", "channel": channel.id, "user": message.user, "text": message.text,
            "ts": message.ts, "channel_type": channel.channel_type, "team": self.slack.team_id,
            "client_msg_id": f"cm-{message.ts}",
        }  # fmt: skip
        if message.thread_ts:
            event["thread_ts"] = message.thread_ts
            event["parent_user_id"] = self.slack.message(channel.id, message.thread_ts).user
        if files:
            event["subtype"] = "file_share"
            if channel.is_ext_shared:  # "check_file_info": the app must call files.info
                event["files"] = [{"id": f.id, "file_access": "check_file_info"} for f in files]
            else:
                event["files"] = [f.json(self.slack.base_url) for f in files]
        return event

    async def message(
        self, channel: str, user: str, text: str, *, thread_ts: str = "", files: tuple[FakeFile, ...] = ()
    ) -> tuple[FakeMessage, Delivery]:
        """A user writes `text` (Slack escapes &, <, >): the message event the app subscribes to."""
        message = self.slack.post_user_message(channel, user, _escape(text), thread_ts=thread_ts, files=files)
        delivery = await self.deliver(self.envelope(self._message_event(message, files)))
        return message, delivery

    async def mention(
        self, channel: str, user: str, text: str, *, thread_ts: str = "", files: tuple[FakeFile, ...] = ()
    ) -> tuple[FakeMessage, list[Delivery]]:
        """A user mentions the bot in a channel: Slack sends app_mention and the message event."""
        message = self.slack.post_user_message(
            channel, user, f"<@{BOT_USER_ID}> {_escape(text)}", thread_ts=thread_ts, files=files
        )
        as_message = self._message_event(message, files)
        as_mention = {k: v for k, v in as_message.items() if k not in ("channel_type", "subtype")}
        as_mention["type"] = "app_mention"
        deliveries = await asyncio.gather(
            self.deliver(self.envelope(as_mention)), self.deliver(self.envelope(as_message))
        )
        return message, list(deliveries)

    async def home_opened(self, user: str, channel: str, *, tab: str = "messages") -> Delivery:
        """A person opens the app's Messages (or Home) tab: app_home_opened, `channel` their DM."""
        event = {"type": "app_home_opened", "user": user, "channel": channel, "tab": tab}
        return await self.deliver(self.envelope(event))

    async def context_changed(self, user: str, *channels: str) -> Delivery:
        """Beside the agent view, a person now views `channels` (most relevant first; none: nothing)."""
        entities = [
            {"type": "slack#/types/channel_id", "value": c, "team_id": self.slack.team_id} for c in channels
        ]
        event = {
            "type": "app_context_changed",
            "user": user,
            "context": {"entities": entities} if entities else {},
        }
        return await self.deliver(self.envelope(event))

    async def command(
        self, text: str, *, user: str, channel: str, command: str = "/grok", **kwargs: Any
    ) -> Delivery:
        fields = {
            "token": "verification-token-unused", "team_id": self.slack.team_id, "team_domain": "fake",
            "channel_id": channel, "channel_name": self.slack.channels[channel].name, "user_id": user,
            "user_name": self.slack.users[user].name, "command": command, "text": text,
            "api_app_id": APP_ID, "is_enterprise_install": "false",
            "response_url": f"{self.slack.base_url}respond/{uuid.uuid4().hex[:12]}",
            "trigger_id": f"{next(self._event_ids)}.{int(time.time())}.{uuid.uuid4().hex[:16]}",
        }  # fmt: skip
        body = urllib.parse.urlencode(fields).encode()
        return await self.post(body, "application/x-www-form-urlencoded", **kwargs)

    async def feedback(self, message: FakeMessage, *, user: str, value: str) -> Delivery:
        """A click on the feedback buttons of a bot message."""
        element = next(e for b in message.blocks if b.get("type") == "context_actions" for e in b["elements"])
        action = {"type": "feedback_buttons", "action_id": element["action_id"], "block_id": "fb",
                  "value": value, "action_ts": str(time.time())}  # fmt: skip
        return await self._block_action(message, user, action)

    async def click(self, message: FakeMessage, action_id: str, *, user: str) -> Delivery:
        """A click on the button `action_id` of a bot message (an actions block's button)."""
        button = next(
            e
            for b in message.blocks
            if b.get("type") == "actions"
            for e in b["elements"]
            if e.get("action_id") == action_id
        )
        action = {"type": "button", "action_id": action_id, "block_id": "rb", "text": button["text"],
                  "value": button.get("value", ""), "action_ts": str(time.time())}  # fmt: skip
        return await self._block_action(message, user, action)

    async def _block_action(self, message: FakeMessage, user: str, action: dict[str, Any]) -> Delivery:
        """A `block_actions` interaction on a bot message, as Slack posts it."""
        payload = {
            "type": "block_actions",
            "user": {"id": user, "username": self.slack.users[user].name, "team_id": self.slack.team_id},
            "api_app_id": APP_ID, "token": "verification-token-unused", "trigger_id": "1.2.3",
            "container": {"type": "message", "message_ts": message.ts, "channel_id": message.channel,
                          "is_ephemeral": False, "thread_ts": message.thread_ts or None},
            "team": {"id": self.slack.team_id, "domain": "fake"},
            "channel": {"id": message.channel, "name": self.slack.channels[message.channel].name},
            "message": message.json(),
            "actions": [action],
        }  # fmt: skip
        body = urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()
        return await self.post(body, "application/x-www-form-urlencoded")


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
