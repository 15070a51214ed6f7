"""The HTTP edge of POST /slack/events, before Bolt: an unsigned request gets a 401 (as from Bolt), a
signed body that is not a Slack delivery a 400 and one log line (Bolt would answer it with a 500 and
a traceback), and while the adapter drains, deliveries are answered so that they are made again, not
lost. Bodies over the server's limit (aiohttp's client_max_size, 1 MiB) get aiohttp's 413.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse

log = logging.getLogger(__name__)

Dispatch = Callable[[AsyncBoltRequest], Awaitable[BoltResponse]]
IsNoise = Callable[[Mapping[str, Any]], bool]

# Slack redelivers an event answered with an error at once, after about a minute and after about
# five (platforms.md S1); Retry-After says when this instance expects to be back.
RETRY_AFTER_S = 60
RESTARTING = "Grok is restarting. Please run the command again in a moment."
MAX_SKEW_S = 5 * 60  # Slack's rule: refuse a request whose timestamp is further off (replays)


@dataclass(frozen=True)
class Delivery:
    """What a body is: an event's or interaction's `type`, "command" or "ssl_check", and the body
    read; or, with `kind` "", why it is not a Slack delivery."""

    kind: str
    problem: str = ""
    body: Mapping[str, Any] = field(default_factory=dict)


def delivery_of(body: bytes, content_type: str) -> Delivery:
    """The delivery `body` is, read as Bolt reads it (JSON when the type says so or it starts with
    "{"; otherwise a form whose `payload` is an interaction's JSON)."""
    try:
        text = body.decode()
    except UnicodeDecodeError:
        return Delivery("", "not UTF-8")
    if content_type == "application/json" or text.startswith("{"):
        return _typed(text, "JSON")
    form = dict(parse_qsl(text, keep_blank_values=True))
    if "payload" in form:
        return _typed(form["payload"], "the payload")
    for kind in ("command", "ssl_check"):
        if kind in form:
            return Delivery(kind, body=form)
    return Delivery("", "a form without payload or command")


def _typed(text: str, what: str) -> Delivery:
    """A JSON object with a `type`, which every event and interaction Slack sends has."""
    try:
        value: Any = json.loads(text)
    except ValueError:
        return Delivery("", f"{what} is not valid JSON")
    if not isinstance(value, dict):
        return Delivery("", f"{what} is a JSON {type(value).__name__}, not an object")
    if not isinstance(value.get("type"), str) or not value["type"]:
        return Delivery("", f"{what} has no type")
    return Delivery(value["type"], body=value)


class HttpEdge:
    """Checks each POST /slack/events, then hands it to Bolt (`dispatch`)."""

    def __init__(self, dispatch: Dispatch, *, signing_secret: str, is_noise: IsNoise) -> None:
        self._dispatch = dispatch
        self._is_noise = is_noise  # events Bolt drops at once: served while draining, as they cost nothing
        self._secret = signing_secret.encode()
        self.draining = False

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()  # past client_max_size, aiohttp answers 413 from here
        if not self._signed(body, request.headers):
            log.info("401 to a POST /slack/events without a valid signature")
            return web.json_response({"error": "invalid request"}, status=401)  # as Bolt answers
        refused = self._refused(delivery_of(body, request.content_type))
        if refused is not None:
            return refused
        bolt = AsyncBoltRequest(
            body=body.decode(),
            query=request.query_string,
            headers=request.headers,  # type: ignore[arg-type]  # a mapping of str, as Bolt's adapter passes
        )
        return await to_aiohttp_response(await self._dispatch(bolt))

    def _signed(self, body: bytes, headers: Mapping[str, str]) -> bool:
        """Slack's signature (v0=HMAC-SHA256 of "v0:{timestamp}:{body}") over the bytes as they came,
        with a timestamp within MAX_SKEW_S; any malformed header is simply not a signature."""
        timestamp = headers.get("X-Slack-Request-Timestamp", "")
        if not timestamp.isdecimal() or abs(time.time() - int(timestamp)) > MAX_SKEW_S:
            return False
        digest = hmac.new(self._secret, b"v0:" + timestamp.encode() + b":" + body, hashlib.sha256)
        given = headers.get("X-Slack-Signature", "").encode(errors="replace")
        return hmac.compare_digest(f"v0={digest.hexdigest()}".encode(), given)

    def _refused(self, delivery: Delivery) -> web.Response | None:
        """The answer to a body that is no delivery, or that comes while draining; None: serve it."""
        if delivery.problem:
            log.warning(
                "400 to a signed POST /slack/events that is not a Slack delivery: %s", delivery.problem
            )
            # Sent again it would be no better: X-Slack-No-Retry stops Slack's retries.
            return web.json_response(
                {"error": delivery.problem}, status=400, headers={"X-Slack-No-Retry": "1"}
            )
        if not self.draining:
            return None
        if delivery.kind == "event_callback" and not self._is_noise(delivery.body):
            # Never acknowledged, so never dropped: Slack sends it again, to another instance or to
            # this one restarted, and the engine answers each event id once across instances.
            return web.json_response(
                {"error": "restarting"}, status=503, headers={"Retry-After": str(RETRY_AFTER_S)}
            )
        if delivery.kind == "command":  # Slack does not send a command again: the person may
            return web.json_response({"response_type": "ephemeral", "text": RESTARTING})
        return None  # checks, and clicks that are recorded at once
