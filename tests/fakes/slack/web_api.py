"""The fake Slack's Web API: every method the adapter calls, as Slack documents it (errors, limits,
encodings), on a real aiohttp server on 127.0.0.1; it also serves uploads, files and response_urls."""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import time
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import aiohttp
from aiohttp import web

from tests.fakes.slack.sender import EventSender, envelope
from tests.fakes.slack.socket_mode import PATH as SOCKET_MODE_PATH
from tests.fakes.slack.socket_mode import FakeSocketMode
from tests.fakes.slack.values import (
    APP_TOKEN,
    APP_TOKEN_METHODS,
    BOT_ID,
    BOT_TOKEN,
    BOT_USER_ID,
    HISTORY_LIMITED_PAGE,
    HISTORY_METHODS,
    KNOWN_BLOCKS,
    MARKDOWN_LIMIT,
    MAX_BLOCKS,
    MAX_SUGGESTED_PROMPTS,
    METHOD_TIERS,
    POST_BURST_PER_CHANNEL,
    POST_RATE_PER_CHANNEL,
    POSTING_METHODS,
    RESPONSE_URL_USES,
    SECTION_LIMIT,
    SIGNING_SECRET,
    TEAM_ID,
    TEXT_LIMIT,
    TIER_PER_MINUTE,
    Call,
    FakeChannel,
    FakeFile,
    FakeMessage,
    FakeUser,
    SlackError,
)


class _Window:
    """At most `limit` calls in any `span` seconds."""

    def __init__(self, limit: int, span: float = 60.0) -> None:
        self.limit = limit
        self.span = span
        self.stamps: deque[float] = deque()

    def take(self, now: float) -> float:
        """0 when allowed (and counted), else seconds until a slot frees."""
        while self.stamps and now - self.stamps[0] >= self.span:
            self.stamps.popleft()
        if len(self.stamps) >= self.limit:
            return self.stamps[0] + self.span - now
        self.stamps.append(now)
        return 0.0


class _Bucket:
    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = float(burst)
        self.stamp: float | None = None

    def take(self, now: float) -> float:
        if self.stamp is not None:
            self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate


CHUNK_TYPES = ("markdown_text", "task_update", "plan_update", "blocks")
TASK_STATUSES = ("pending", "in_progress", "complete", "error")
TASK_TEXT = 256  # a task card's details and output
CONTEXT_ELEMENTS = 10
BUTTON_VALUE = 2000


def _validate_task(chunk: Mapping[str, Any]) -> None:
    """A task_update chunk as Slack checks it: id, title and a known status; details and output
    within 256 characters; sources as url elements with their text."""
    if not chunk.get("id") or not chunk.get("title") or chunk.get("status") not in TASK_STATUSES:
        raise SlackError("invalid_chunks")
    for key in ("details", "output"):
        if key in chunk and (not isinstance(chunk[key], str) or len(chunk[key]) > TASK_TEXT):
            raise SlackError("invalid_chunks")
    for source in chunk.get("sources") or []:
        if not isinstance(source, dict) or source.get("type") != "url":
            raise SlackError("invalid_chunks")
        if not str(source.get("url", "")).startswith(("http://", "https://")) or not source.get("text"):
            raise SlackError("invalid_chunks")  # Slack rejects a source without text


def _flag(value: Any) -> bool:
    return value in (True, 1, "1", "true", "True")


def _as_list(value: Any) -> list[Any] | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise SlackError("invalid_blocks_format") from exc
    if not isinstance(value, list):
        raise SlackError("invalid_blocks_format")
    return value


class FakeSlack:
    def __init__(
        self,
        *,
        bot_token: str = BOT_TOKEN,
        app_token: str = APP_TOKEN,
        signing_secret: str = SIGNING_SECRET,
        team_id: str = TEAM_ID,
        rate_limits: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.bot_token = bot_token
        self.app_token = app_token  # Socket Mode: apps.connections.open takes this token only
        self.signing_secret = signing_secret
        self.team_id = team_id
        self.rate_limits = rate_limits
        self.clock = clock
        self.users: dict[str, FakeUser] = {}
        self.channels: dict[str, FakeChannel] = {}
        self.messages: dict[str, list[FakeMessage]] = defaultdict(list)
        self.files: dict[str, FakeFile] = {}
        self.ephemerals: list[dict[str, Any]] = []
        self.responses: list[dict[str, Any]] = []  # bodies POSTed to response_url
        self.statuses: list[dict[str, Any]] = []
        self.suggested_prompts: dict[str, dict[str, Any]] = {}  # DM -> the prompts shown at its top
        self.calls: list[Call] = []
        self.rate_limited = 0
        self.markdown_limit = MARKDOWN_LIMIT  # markdown_text per call, markdown blocks per message
        self.stream_limit = MARKDOWN_LIMIT  # msg_too_long when a streamed message would grow past it
        self.stream_ttl: float | None = None  # a stream expires this long after it started
        # platforms.md S4: a commercially distributed non-Marketplace app created since 2025-05-29
        # reads conversations.history/.replies once a minute (`history_window` s here), 15 at most.
        self.history_limited = False
        self.history_window = 60.0
        self.echo_url: str | None = None  # where bot-message events go (as Slack sends them)
        self.fail: dict[str, deque[str]] = defaultdict(deque)  # method -> errors to answer next
        self._ids = itertools.count(1)
        self._ts = time.time()
        self._windows: dict[tuple[str, str], _Window] = {}
        self._buckets: dict[tuple[str, str], _Bucket] = {}
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._echoes: set[asyncio.Task[Any]] = set()
        self._waiters: list[tuple[Callable[[], object], asyncio.Future[None]]] = []
        self.socket_mode = FakeSocketMode(lambda: self.base_url, self._changed)
        self.port = 0
        self.add_user(BOT_USER_ID, "grok", is_bot=True)

    # -- lifecycle ------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    @property
    def api_url(self) -> str:
        return f"{self.base_url}api/"

    async def start(self, *, port: int = 0) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_post("/upload/{file_id}", self._upload)
        app.router.add_get("/files-pri/{path:.*}", self._download)
        app.router.add_post("/respond/{id}", self._respond)
        app.router.add_get(SOCKET_MODE_PATH, self.socket_mode.handle)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        self.port = self._runner.addresses[0][1]
        self._session = aiohttp.ClientSession()

    async def stop(self) -> None:
        for task in list(self._echoes):
            task.cancel()
        await asyncio.gather(*self._echoes, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self) -> FakeSlack:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- state helpers --------------------------------------------------------------------------

    def add_user(self, user_id: str, name: str, **details: Any) -> FakeUser:
        user = FakeUser(user_id, name, **details)
        self.users[user_id] = user
        return user

    def add_channel(
        self, channel_id: str, name: str = "", *, is_im: bool = False, **details: Any
    ) -> FakeChannel:
        channel = FakeChannel(channel_id, name or channel_id.lower(), is_im=is_im, **details)
        self.channels[channel_id] = channel
        return channel

    def next_ts(self) -> str:
        self._ts = max(self._ts + 0.000001, time.time())
        return f"{self._ts:.6f}"

    def add_file(self, user: str, filename: str, mimetype: str, data: bytes) -> FakeFile:
        """A file a user uploaded (its url_private needs the bot token)."""
        file = FakeFile(f"F{next(self._ids):08d}", filename, filename, mimetype, data, len(data), user=user)
        file.uploaded = True
        self.files[file.id] = file
        return file

    def post_user_message(
        self, channel: str, user: str, text: str, *, thread_ts: str = "", files: tuple[FakeFile, ...] = ()
    ) -> FakeMessage:
        message = FakeMessage(self.next_ts(), channel, user, text, thread_ts=thread_ts)
        message.files = [f.id for f in files]
        message.record()
        self.messages[channel].append(message)
        return message

    def message(self, channel: str, ts: str) -> FakeMessage:
        for message in self.messages[channel]:
            if message.ts == ts:
                return message
        raise KeyError(ts)

    def thread(self, channel: str, thread_ts: str) -> list[FakeMessage]:
        return [m for m in self.messages[channel] if m.ts == thread_ts or m.thread_ts == thread_ts]

    def bot_messages(self, channel: str | None = None, *, thread_ts: str | None = None) -> list[FakeMessage]:
        channels = [channel] if channel else list(self.messages)
        return [
            m
            for c in channels
            for m in self.messages[c]
            if m.user == BOT_USER_ID and (thread_ts is None or m.thread_ts == thread_ts)
        ]

    def calls_to(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method and c.status == 200]

    async def wait_until(self, check: Callable[[], object], *, within: float = 30.0) -> None:
        """Until `check()` is true: looked at now, then again whenever the fake records something
        (a Web API call answered, a Socket Mode connection or acknowledgement). TimeoutError after
        `within` seconds (a guard against hanging, not a measure)."""
        if check():
            return
        reached = asyncio.get_running_loop().create_future()
        self._waiters.append((check, reached))
        try:
            async with asyncio.timeout(within):
                await reached
        finally:
            self._waiters = [w for w in self._waiters if w[1] is not reached]

    def _changed(self) -> None:
        for check, reached in self._waiters:
            if not reached.done() and check():
                reached.set_result(None)

    def expire_streams(self) -> None:
        """Every open stream ends server-side (as if it had timed out)."""
        for messages in self.messages.values():
            for message in messages:
                message.streaming = False

    def stop_by_user(self, channel: str, ts: str) -> None:
        """The person presses stop on a streaming message: Slack ends the stream, and appends
        and stops get `stopped_by_user` from then on."""
        [message] = [m for m in self.messages[channel] if m.ts == ts]
        message.streaming = False
        message.stopped_by_user = True

    def sender(self, app_url: str, *, session: aiohttp.ClientSession | None = None) -> EventSender:
        return EventSender(self, app_url, session or self._require_session())

    def _require_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("FakeSlack is not started")
        return self._session

    # -- the Web API ----------------------------------------------------------------------------

    async def _args(self, request: web.Request) -> tuple[dict[str, Any], str | None, str]:
        """The call's arguments (query string, then a JSON or form body), its token, and which
        body carried arguments ("" when none did)."""
        args: dict[str, Any] = dict(request.query)
        token: str | None = None
        body_kind = ""
        auth = request.headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            token = auth[len("Bearer ") :]
        if request.method == "POST" and request.body_exists:
            if request.content_type == "application/json":
                try:
                    body = await request.json()
                except json.JSONDecodeError as exc:
                    raise SlackError("invalid_json") from exc
                if not isinstance(body, dict):
                    raise SlackError("invalid_json")
                if "token" in body:
                    raise SlackError("invalid_arguments")  # JSON bodies carry no token
                args.update(body)
                body_kind = "json" if body else ""
            elif request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
                form = {k: v for k, v in (await request.post()).items() if isinstance(v, str)}
                args.update(form)
                body_kind = "form" if set(form) - {"token"} else ""
            else:
                raise SlackError("invalid_post_type")
        if token is None and isinstance(args.get("token"), str):
            token = args["token"]
        args.pop("token", None)
        return args, token, body_kind

    def _throttle(self, method: str, args: Mapping[str, Any]) -> float:
        if not self.rate_limits:
            return 0.0
        now = self.clock()
        wait = 0.0
        if method in POSTING_METHODS:
            key = (method if method != "chat.startStream" else "chat.postMessage", str(args.get("channel")))
            bucket = self._buckets.setdefault(key, _Bucket(POST_RATE_PER_CHANNEL, POST_BURST_PER_CHANNEL))
            wait = bucket.take(now)
        tier = METHOD_TIERS.get(method)
        if self.history_limited and method in HISTORY_METHODS:
            key = (self.team_id, f"{method} limited {self.history_window}")
            window = self._windows.setdefault(key, _Window(1, self.history_window))
            wait = window.take(now)
        elif tier is not None and wait == 0.0:
            window = self._windows.setdefault((self.team_id, method), _Window(TIER_PER_MINUTE[tier]))
            wait = window.take(now)
        return wait

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        started = time.perf_counter()
        try:
            args, token, body = await self._args(request)
        except SlackError as exc:
            return self._answer(Call(method, {}, 200, exc.error, started), {"ok": False, "error": exc.error})
        call = Call(method, args, 200, at=started, body=body)
        if token is None:
            return self._answer(call, {"ok": False, "error": "not_authed"})
        wanted = self.app_token if method in APP_TOKEN_METHODS else self.bot_token
        if token != wanted:
            wrong_kind = token in (self.app_token, self.bot_token)
            return self._answer(
                call, {"ok": False, "error": "not_allowed_token_type" if wrong_kind else "invalid_auth"}
            )
        handler = getattr(self, "m_" + method.replace(".", "_"), None)
        if handler is None:
            return self._answer(call, {"ok": False, "error": "unknown_method"})
        wait = self._throttle(method, args)
        if wait > 0:
            self.rate_limited += 1
            call.status = 429
            self._record(call)
            retry_after = str(max(1, math.ceil(wait)))
            return web.json_response(
                {"ok": False, "error": "ratelimited"}, status=429, headers={"Retry-After": retry_after}
            )
        if self.fail[method]:
            return self._answer(call, {"ok": False, "error": self.fail[method].popleft()})
        try:
            result: dict[str, Any] = await handler(args)
        except SlackError as exc:
            return self._answer(call, {"ok": False, "error": exc.error})
        return self._answer(call, {"ok": True, **result})

    def _answer(self, call: Call, body: dict[str, Any]) -> web.Response:
        call.error = body.get("error", "")
        self._record(call)
        return web.json_response(body)

    def _record(self, call: Call) -> None:
        self.calls.append(call)
        self._changed()

    def _channel(self, args: Mapping[str, Any], key: str = "channel") -> FakeChannel:
        channel_id = args.get(key)
        if not channel_id:
            raise SlackError("channel_not_found")
        channel = self.channels.get(str(channel_id))
        if channel is None:
            raise SlackError("channel_not_found")
        return channel

    def _bot_message(self, args: Mapping[str, Any]) -> FakeMessage:
        channel = self._channel(args)
        try:
            message = self.message(channel.id, str(args.get("ts")))
        except KeyError as exc:
            raise SlackError("message_not_found") from exc
        if message.user != BOT_USER_ID:
            raise SlackError("cant_update_message")
        return message

    def _content(
        self, args: Mapping[str, Any], *, required: bool = True
    ) -> tuple[str, str | None, list[Any]]:
        """(text, markdown, blocks) of a message, validated as Slack does."""
        text = str(args.get("text") or "")
        markdown_text = args.get("markdown_text")
        blocks = _as_list(args.get("blocks")) or []
        if markdown_text is not None and (text or blocks):
            raise SlackError("invalid_arguments")  # markdown_text combines with neither text nor blocks
        if required and not text and not markdown_text and not blocks:
            raise SlackError("no_text")
        if len(text) > TEXT_LIMIT:
            raise SlackError("msg_too_long")
        if markdown_text is not None and len(str(markdown_text)) > self.markdown_limit:
            raise SlackError("msg_too_long")
        markdown = self._validate_blocks(blocks)
        if markdown_text is not None:
            markdown = str(markdown_text)
        return text, markdown, blocks

    def _validate_blocks(self, blocks: list[Any]) -> str | None:
        """Raise invalid_blocks for what Slack refuses; the joined markdown blocks' text if any."""
        if len(blocks) > MAX_BLOCKS:
            raise SlackError("invalid_blocks")
        markdown: list[str] = []
        for block in blocks:
            if not isinstance(block, dict) or block.get("type") not in KNOWN_BLOCKS:
                raise SlackError("invalid_blocks")
            kind = block["type"]
            if kind == "markdown":
                if not isinstance(block.get("text"), str) or not block["text"]:
                    raise SlackError("invalid_blocks")
                markdown.append(block["text"])
            elif kind == "section":
                text = block.get("text") or {}
                if not isinstance(text, dict) or len(str(text.get("text", ""))) > SECTION_LIMIT:
                    raise SlackError("invalid_blocks")
            elif kind == "context":
                elements = block.get("elements")
                if not isinstance(elements, list) or not 0 < len(elements) <= CONTEXT_ELEMENTS:
                    raise SlackError("invalid_blocks")
                for element in elements:
                    if element.get("type") not in ("mrkdwn", "plain_text", "image"):
                        raise SlackError("invalid_blocks")
                    if element["type"] != "image" and not 0 < len(str(element.get("text", ""))) <= 3000:
                        raise SlackError("invalid_blocks")
            elif kind == "actions":
                elements = block.get("elements")
                if not isinstance(elements, list) or not 0 < len(elements) <= 25:
                    raise SlackError("invalid_blocks")
                for element in elements:
                    if element.get("type") == "button" and not (
                        element.get("action_id")
                        and 0 < len(str((element.get("text") or {}).get("text", ""))) <= 75
                        and len(str(element.get("value", ""))) <= BUTTON_VALUE
                    ):
                        raise SlackError("invalid_blocks")
            elif kind == "context_actions":
                elements = block.get("elements")
                if not isinstance(elements, list) or not 0 < len(elements) <= 5:
                    raise SlackError("invalid_blocks")
                for element in elements:
                    if element.get("type") not in ("feedback_buttons", "icon_button"):
                        raise SlackError("invalid_blocks")
                    if element["type"] == "feedback_buttons" and not (
                        element.get("action_id")
                        and element.get("positive_button", {}).get("value")
                        and element.get("negative_button", {}).get("value")
                    ):
                        raise SlackError("invalid_blocks")
        if sum(len(m) for m in markdown) > self.markdown_limit:
            raise SlackError("invalid_blocks")
        return "\n".join(markdown) if markdown else None

    def _thread_ts(self, channel: FakeChannel, args: Mapping[str, Any]) -> str:
        thread_ts = str(args.get("thread_ts") or "")
        if thread_ts:
            try:
                parent = self.message(channel.id, thread_ts)
            except KeyError as exc:
                raise SlackError("thread_not_found") from exc
            thread_ts = parent.thread_ts or parent.ts
        return thread_ts

    def _post(self, channel: FakeChannel, args: Mapping[str, Any], message: FakeMessage) -> FakeMessage:
        message.record()
        self.messages[channel.id].append(message)
        self._echo({**message.json(), "channel": channel.id, "channel_type": channel.channel_type})
        return message

    async def m_apps_connections_open(self, args: Mapping[str, Any]) -> dict[str, Any]:
        return {"url": self.socket_mode.open()}

    async def m_auth_test(self, args: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "url": "https://fake-workspace.slack.com/",
            "team": "Fake Workspace",
            "user": "grok",
            "team_id": self.team_id,
            "user_id": BOT_USER_ID,
            "bot_id": BOT_ID,
            "is_enterprise_install": False,
        }

    async def m_chat_postMessage(self, args: Mapping[str, Any]) -> dict[str, Any]:
        channel = self._channel(args)
        text, markdown, blocks = self._content(args)
        message = FakeMessage(self.next_ts(), channel.id, BOT_USER_ID, text, markdown, blocks, bot_id=BOT_ID)
        message.thread_ts = self._thread_ts(channel, args)
        self._post(channel, args, message)
        return {"channel": channel.id, "ts": message.ts, "message": message.json()}

    async def m_chat_update(self, args: Mapping[str, Any]) -> dict[str, Any]:
        message = self._bot_message(args)
        if message.streaming and not self._expired(message):
            raise SlackError("cant_update_message")
        text, markdown, blocks = self._content(args)
        message.streaming = False
        message.text, message.markdown, message.blocks = text, markdown, blocks
        message.edits += 1
        message.record()
        self._echo_changed(message)
        return {"channel": message.channel, "ts": message.ts, "text": message.content}

    async def m_chat_delete(self, args: Mapping[str, Any]) -> dict[str, Any]:
        message = self._bot_message(args)
        self.messages[message.channel].remove(message)
        return {"channel": message.channel, "ts": message.ts}

    async def m_chat_postEphemeral(self, args: Mapping[str, Any]) -> dict[str, Any]:
        channel = self._channel(args)
        user = str(args.get("user") or "")
        if user not in self.users:
            raise SlackError("user_not_found")
        text, markdown, blocks = self._content(args)
        ts = self.next_ts()
        self.ephemerals.append(
            {"channel": channel.id, "user": user, "text": text, "markdown": markdown, "blocks": blocks,
             "thread_ts": str(args.get("thread_ts") or ""), "ts": ts}
        )  # fmt: skip
        return {"message_ts": ts}

    # streaming -------------------------------------------------------------------------------

    def _expired(self, message: FakeMessage) -> bool:
        ttl = self.stream_ttl
        if message.streaming and ttl is not None and self.clock() - message.stream_started > ttl:
            message.streaming = False
        return not message.streaming

    def _stream_text(self, args: Mapping[str, Any], message: FakeMessage | None = None) -> str:
        """The Markdown a stream call adds, its chunks validated as Slack does (markdown_text,
        task_update, plan_update, blocks); task cards are recorded on `message` in order."""
        pieces: list[str] = []
        if args.get("markdown_text") is not None:
            pieces.append(str(args["markdown_text"]))
        for chunk in _as_list(args.get("chunks")) or []:
            if not isinstance(chunk, dict) or chunk.get("type") not in CHUNK_TYPES:
                raise SlackError("invalid_chunks")
            if chunk["type"] == "markdown_text":
                pieces.append(str(chunk.get("text", "")))
            elif chunk["type"] == "task_update":
                _validate_task(chunk)
                if message is not None:
                    message.tasks.append(dict(chunk))
            elif chunk["type"] == "plan_update" and not chunk.get("title"):
                raise SlackError("invalid_chunks")
            elif chunk["type"] == "blocks":
                self._validate_blocks(_as_list(chunk.get("blocks")) or [])
        text = "".join(pieces)
        if len(text) > self.markdown_limit:
            raise SlackError("msg_too_long")
        return text

    def _grow(self, message: FakeMessage, text: str) -> None:
        if not text:
            return
        current = message.markdown or ""
        if len(current) + len(text) > self.stream_limit:
            raise SlackError("msg_too_long")
        message.markdown = current + text
        message.edits += 1
        message.record()

    async def m_chat_startStream(self, args: Mapping[str, Any]) -> dict[str, Any]:
        channel = self._channel(args)
        if not args.get("thread_ts"):
            raise SlackError("invalid_arguments")
        if not channel.is_im:
            if not args.get("recipient_user_id"):
                raise SlackError("missing_recipient_user_id")
            if not args.get("recipient_team_id"):
                raise SlackError("missing_recipient_team_id")
        message = FakeMessage(self.next_ts(), channel.id, BOT_USER_ID, bot_id=BOT_ID)
        text = self._stream_text(args, message)
        if len(text) > self.stream_limit:  # a stream may not start past what it may grow to
            raise SlackError("msg_too_long")
        message.markdown = text
        message.thread_ts = self._thread_ts(channel, args)
        message.streaming = True
        message.stream_started = self.clock()
        message.recipient = str(args.get("recipient_user_id") or "")
        self._post(channel, args, message)
        return {"channel": channel.id, "ts": message.ts}

    def _streaming_message(self, args: Mapping[str, Any]) -> FakeMessage:
        message = self._bot_message(args)
        if message.stopped_by_user:
            raise SlackError("stopped_by_user")
        if self._expired(message):
            raise SlackError("message_not_in_streaming_state")
        return message

    async def m_chat_appendStream(self, args: Mapping[str, Any]) -> dict[str, Any]:
        message = self._streaming_message(args)
        if args.get("markdown_text") is None and not _as_list(args.get("chunks")):
            raise SlackError("no_text")  # appendStream takes markdown_text or chunks
        tasks = len(message.tasks)
        self._grow(message, self._stream_text(args, message))
        if len(message.tasks) > tasks:
            message.record()
        return {"channel": message.channel, "ts": message.ts}

    async def m_chat_stopStream(self, args: Mapping[str, Any]) -> dict[str, Any]:
        message = self._streaming_message(args)
        blocks = _as_list(args.get("blocks")) or []
        self._validate_blocks(blocks)
        self._grow(message, self._stream_text(args, message))
        message.blocks = message.blocks + blocks
        message.streaming = False
        message.record()
        self._echo_changed(message)
        return {"channel": message.channel, "ts": message.ts, "message": message.json()}

    async def m_assistant_threads_setStatus(self, args: Mapping[str, Any]) -> dict[str, Any]:
        channel = self._channel(args, "channel_id")
        if not args.get("thread_ts"):
            raise SlackError("invalid_arguments")
        self.statuses.append({"channel": channel.id, **dict(args)})
        return {}

    async def m_assistant_threads_setSuggestedPrompts(self, args: Mapping[str, Any]) -> dict[str, Any]:
        """The agent view: prompts at the top of a person's DM with the app. With thread_ts (the
        legacy assistant view's) the call "silently fails": ok, and nothing is shown."""
        channel = self._channel(args, "channel_id")
        prompts = _as_list(args.get("prompts"))
        if not channel.is_im or not prompts or len(prompts) > MAX_SUGGESTED_PROMPTS:
            raise SlackError("invalid_arguments")
        if not all(isinstance(p, dict) and p.get("title") and p.get("message") for p in prompts):
            raise SlackError("invalid_arguments")
        if not args.get("thread_ts"):
            self.suggested_prompts[channel.id] = {"title": args.get("title"), "prompts": prompts}
        return {}

    # reading ---------------------------------------------------------------------------------

    def _page(self, items: list[FakeMessage], args: Mapping[str, Any]) -> dict[str, Any]:
        most = HISTORY_LIMITED_PAGE if self.history_limited else 999
        limit = max(1, min(int(args.get("limit") or 100), most))
        start = int(str(args.get("cursor") or "0").removeprefix("c:") or 0)
        page = items[start : start + limit]
        more = start + limit < len(items)
        return {
            "messages": [m.json() for m in page],
            "has_more": more,
            "response_metadata": {"next_cursor": f"c:{start + limit}" if more else ""},
        }

    async def m_files_info(self, args: Mapping[str, Any]) -> dict[str, Any]:
        file = self.files.get(str(args.get("file") or ""))
        if file is None:
            raise SlackError("file_not_found")
        return {"file": file.json(self.base_url)}

    async def m_conversations_history(self, args: Mapping[str, Any]) -> dict[str, Any]:
        channel = self._channel(args)
        oldest = float(args.get("oldest") or 0)
        latest = float(args.get("latest") or 1e12)
        inclusive = _flag(args.get("inclusive"))
        selected = [
            m
            for m in self.messages[channel.id]
            if (not m.thread_ts or m.thread_ts == m.ts)
            and (oldest <= float(m.ts) <= latest if inclusive else oldest < float(m.ts) < latest)
        ]
        return self._page(list(reversed(selected)), args)

    async def m_conversations_replies(self, args: Mapping[str, Any]) -> dict[str, Any]:
        channel = self._channel(args)
        ts = str(args.get("ts") or "")
        replies = self.thread(channel.id, ts)
        if not replies:
            raise SlackError("thread_not_found")
        if args.get("oldest") or args.get("latest"):  # the window's replies, after the parent
            oldest = float(args.get("oldest") or 0)
            latest = float(args.get("latest") or 1e12)
            inclusive = _flag(args.get("inclusive"))
            replies = replies[:1] + [
                m
                for m in replies[1:]
                if (oldest <= float(m.ts) <= latest if inclusive else oldest < float(m.ts) < latest)
            ]
        return self._page(replies, args)

    async def m_conversations_open(self, args: Mapping[str, Any]) -> dict[str, Any]:
        users = [u for u in str(args.get("users") or "").split(",") if u]
        if len(users) != 1 or users[0] not in self.users:
            raise SlackError("user_not_found")
        for channel in self.channels.values():
            if channel.is_im and channel.user == users[0]:
                return {"channel": {"id": channel.id}}
        channel = self.add_channel(f"D{next(self._ids):08d}", is_im=True, user=users[0])
        return {"channel": {"id": channel.id}}

    async def m_users_info(self, args: Mapping[str, Any]) -> dict[str, Any]:
        user = self.users.get(str(args.get("user") or ""))
        if user is None:
            raise SlackError("user_not_found")
        return {"user": user.json()}

    # files -----------------------------------------------------------------------------------

    async def m_files_getUploadURLExternal(self, args: Mapping[str, Any]) -> dict[str, Any]:
        filename = str(args.get("filename") or "")
        try:
            length = int(args.get("length") or 0)
        except ValueError as exc:
            raise SlackError("invalid_arguments") from exc
        if not filename or length <= 0:
            raise SlackError("invalid_arguments")
        alt = str(args.get("alt_txt") or "")
        if len(alt) > 1000:
            raise SlackError("invalid_arguments")
        file = FakeFile(f"F{next(self._ids):08d}", filename, declared_length=length, alt_txt=alt)
        self.files[file.id] = file
        return {"upload_url": f"{self.base_url}upload/{file.id}", "file_id": file.id}

    async def _upload(self, request: web.Request) -> web.Response:
        file = self.files.get(request.match_info["file_id"])
        if file is None:
            return web.Response(status=404, text="not found")
        file.data = await request.read()
        file.uploaded = True
        if file.data[:8] == b"\x89PNG\r\n\x1a\n":
            file.mimetype = "image/png"
        elif file.data[:3] == b"\xff\xd8\xff":
            file.mimetype = "image/jpeg"
        return web.Response(text=f"OK - {len(file.data)}", content_type="text/plain")

    async def m_files_completeUploadExternal(self, args: Mapping[str, Any]) -> dict[str, Any]:
        entries = _as_list(args.get("files"))
        if not entries:
            raise SlackError("invalid_arguments")
        files: list[FakeFile] = []
        for entry in entries:
            file = self.files.get(str(entry.get("id")))
            if file is None or not file.uploaded:
                raise SlackError("file_not_found")
            if len(file.data) != file.declared_length:
                raise SlackError("file_upload_size_mismatch")
            file.title = str(entry.get("title") or file.name)
            files.append(file)
        channel_id = args.get("channel_id") or (str(args.get("channels") or "").split(",")[0] or None)
        if channel_id:
            channel = self._channel({"channel": channel_id})
            message = FakeMessage(
                self.next_ts(), channel.id, BOT_USER_ID, str(args.get("initial_comment") or "")
            )
            message.bot_id, message.subtype = BOT_ID, "file_share"
            message.thread_ts = self._thread_ts(channel, args)
            message.files = [f.id for f in files]
            self._post(channel, args, message)
            for file in files:
                file.shared_to.append((channel.id, message.ts))
        return {"files": [{"id": f.id, "title": f.title} for f in files]}

    async def _download(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {self.bot_token}":
            # Slack answers a login page, not an error status.
            return web.Response(text="<!DOCTYPE html><html>Sign in</html>", content_type="text/html")
        path = request.match_info["path"]
        file_id = path.split("/", 1)[0].split("-", 1)[-1]
        file = self.files.get(file_id)
        if file is None:
            return web.Response(status=404, text="not found")
        return web.Response(body=file.data, content_type=file.mimetype)

    async def _respond(self, request: web.Request) -> web.Response:
        """A slash command's response_url: five posts at most (Slack's limit, within 30 minutes)."""
        url_id = request.match_info["id"]
        if sum(1 for r in self.responses if r["id"] == url_id) >= RESPONSE_URL_USES:
            return web.Response(status=404, text="used_url")
        self.responses.append({"id": url_id, **(await request.json())})
        return web.Response(text="ok")

    # events back to the app (Slack echoes the bot's own posts and edits) ---------------------------

    def _echo(self, event: dict[str, Any]) -> None:
        """Over HTTP to `echo_url`, else over a Socket Mode connection, else nowhere."""
        if self.echo_url is not None:
            sender = self.sender(self.echo_url)
            delivery: Awaitable[Any] = sender.deliver(envelope(self, event))
        elif self.socket_mode.connections:
            delivery = self.socket_mode.deliver(envelope(self, event))
        else:
            return
        task = asyncio.get_running_loop().create_task(delivery)
        self._echoes.add(task)
        task.add_done_callback(self._echoed)

    def _echoed(self, task: asyncio.Task[Any]) -> None:
        self._echoes.discard(task)
        if not task.cancelled():
            task.exception()  # an app that went away misses the echo, as it would Slack's

    def _echo_changed(self, message: FakeMessage) -> None:
        channel = self.channels[message.channel]
        self._echo(
            {"type": "message", "subtype": "message_changed", "channel": channel.id, "hidden": True,
             "channel_type": channel.channel_type, "ts": self.next_ts(), "message": message.json()}
        )  # fmt: skip
