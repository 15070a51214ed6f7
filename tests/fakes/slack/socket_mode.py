"""The fake Slack's Socket Mode: `apps.connections.open` (with the app-level token) hands out a
WebSocket URL on the fake's server; Slack says `hello` on each new connection, then sends envelopes,
and the app acknowledges each by its envelope_id (docs.slack.dev/apis/events-api/using-socket-mode).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from typing import Any

from aiohttp import WSMsgType, web

from tests.fakes.slack.values import APP_ID

PATH = "/socket-mode"


class FakeSocketMode:
    def __init__(self, base_url: Callable[[], str], changed: Callable[[], None]) -> None:
        self._base_url = base_url
        self._changed = changed  # tells the fake's waiters that something happened
        self.tickets: set[str] = set()
        self.connections: list[web.WebSocketResponse] = []
        self.acks: list[dict[str, Any]] = []  # what the app sent back, in order
        self._pending: dict[str, asyncio.Future[dict[str, Any]]] = {}

    def open(self) -> str:
        """A new connection URL (what apps.connections.open returns)."""
        ticket = uuid.uuid4().hex
        self.tickets.add(ticket)
        return f"{self._base_url().replace('http://', 'ws://')}{PATH.lstrip('/')}?ticket={ticket}"

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """One app connection: `hello`, then whatever the app sends back, until it closes."""
        if request.query.get("ticket") not in self.tickets:
            return web.Response(status=401, text="invalid ticket")
        ws = web.WebSocketResponse()  # answers the client's pings (its heartbeat)
        await ws.prepare(request)
        self.connections.append(ws)
        await ws.send_json(
            {"type": "hello", "num_connections": len(self.connections),
             "debug_info": {"host": "fake-slack", "approximate_connection_time": 3600},
             "connection_info": {"app_id": APP_ID}}
        )  # fmt: skip
        self._changed()
        try:
            async for message in ws:
                if message.type == WSMsgType.TEXT:
                    self._acknowledged(json.loads(message.data))
        finally:
            self.connections.remove(ws)
            if not self.connections:  # no acknowledgement can come any more
                for waiting in self._pending.values():
                    if not waiting.done():
                        waiting.set_exception(ConnectionResetError("the app closed its connection"))
            self._changed()
        return ws

    async def deliver(self, payload: dict[str, Any], *, kind: str = "events_api") -> dict[str, Any]:
        """Send `payload` in an envelope to the newest connection; the app's acknowledgement."""
        envelope_id = str(uuid.uuid4())
        acknowledged = asyncio.get_running_loop().create_future()
        self._pending[envelope_id] = acknowledged
        await self.connections[-1].send_json(
            {"envelope_id": envelope_id, "type": kind, "payload": payload,
             "accepts_response_payload": kind != "events_api", "retry_attempt": 0, "retry_reason": ""}
        )  # fmt: skip
        try:
            return await acknowledged
        finally:
            self._pending.pop(envelope_id, None)

    def _acknowledged(self, message: dict[str, Any]) -> None:
        self.acks.append(message)
        waiting = self._pending.get(str(message.get("envelope_id")))
        if waiting is not None and not waiting.done():
            waiting.set_result(message)
        self._changed()
