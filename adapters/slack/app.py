"""The Slack adapter: a slack-bolt AsyncApp whose listeners turn events, /grok and feedback clicks into
engine calls, served over HTTP (POST /slack/events on bot.web) or over Socket Mode.

Composition root:

    web = WebServer(port=settings.port, checks={"database": database_check(db_engine)})
    slack = SlackAdapter(settings, engine, web=web)   # mounts /slack/events, adds the "slack" check
    await slack.start()                               # auth.test; Socket Mode connects here
    await web.start()
    ...
    await web.stop(); await slack.stop()              # stop() lets answers in flight finish first

Every request is acknowledged at once; the work runs afterwards in tasks the adapter tracks.
Redeliveries of an event id are answered 200 and dropped (the engine claims each event id in the
database, across instances). Each /grok command reaches the engine with its own `CommandPlatform`,
which knows the command's channel, caller and response_url. `drain()` takes no new work while the
answers in flight go on: Slack sends what comes meanwhile again (edge.py), or to another connection.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import Any, Protocol

import aiohttp
from prometheus_client import CollectorRegistry, Counter
from pydantic import SecretStr
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.app.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.middleware.async_middleware import AsyncMiddleware
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.agent import (
    PROMPTS_TITLE,
    SUGGESTED_PROMPTS,
    Viewing,
    viewed_channel,
    viewer_of,
    with_viewing,
)
from adapters.slack.api import SlackApi
from adapters.slack.command import CommandPlatform
from adapters.slack.edge import HttpEdge
from adapters.slack.events import (
    bot_user_of,
    feedback_of,
    incoming_from_event,
    is_noise,
    recipient_team,
    thread_of,
)
from adapters.slack.messages import FEEDBACK_ACTION, TEXT_CHARS
from adapters.slack.mrkdwn import markdown_to_mrkdwn, truncate, unescape
from adapters.slack.native import REASONING_ACTION
from adapters.slack.pacing import Pacer
from adapters.slack.platform import SlackPlatform
from adapters.slack.refusals import SlackRefused
from adapters.slack.urls import Relay
from bot.errors import PlatformError
from bot.parsing import parse_command_text
from bot.platform import (
    Author,
    Capabilities,
    Command,
    Feedback,
    Incoming,
    Place,
    Platform,
)
from bot.settings import Settings
from bot.web import WebServer

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
COMMAND = "/grok"
# The events answered (the manifest subscribes to each: message.im, .channels, ... are "message"):
# people's messages, and the agent view's (the Messages tab opened, the channel a person views).
CONVERSATION_EVENTS = ("app_mention", "message")
LISTENED_EVENTS = (*CONVERSATION_EVENTS, "app_home_opened", "app_context_changed")
READY_TTL_S = 60.0
STOP_GRACE_S = 10.0


class EngineLike(Protocol):
    """What the adapter needs of bot.engine.Engine."""

    async def handle(self, incoming: Incoming, platform: Platform) -> bool: ...
    async def feedback(self, feedback: Feedback, platform: Platform) -> None: ...


Next = Callable[[], Awaitable[BoltResponse]]


class DropNoise(AsyncMiddleware):
    """Before authorization: bots' messages, edits, deletions and un-addressed channel chatter get
    an empty 200 at once (every chat.update of ours comes back as a message_changed)."""

    def __init__(self, bot_user_id: Callable[[], str]) -> None:
        self._bot_user_id = bot_user_id

    async def async_process(
        self, *, req: AsyncBoltRequest, resp: BoltResponse, next: Next
    ) -> BoltResponse | None:
        if is_noise(req.body, self._bot_user_id()):
            return BoltResponse(status=200, body="")
        return await next()


class SlackAdapter:
    def __init__(
        self,
        settings: Settings,
        engine: EngineLike,
        *,
        web: WebServer | None = None,
        client: AsyncWebClient | None = None,
        pacer: Pacer | None = None,
        capabilities: Capabilities | None = None,
    ) -> None:
        token, secret = _credentials(settings)
        self.settings = settings
        self.engine = engine
        self.socket_mode = settings.slack_app_token is not None
        registry: CollectorRegistry = web.registry if web is not None else CollectorRegistry()
        self._events, self._duplicates = _counters(registry)
        self._own_http = client is None
        self.client = client or AsyncWebClient(
            token=token.get_secret_value(), base_url=settings.slack_api_url, timeout=30
        )
        self.api = SlackApi(pacer=pacer or Pacer(), registry=registry)
        self.platform = SlackPlatform(
            api=self.api, client=self.client, token=token, api_url=settings.slack_api_url,
            edit_interval=settings.grokbot_edit_interval_s, capabilities=capabilities,
        )  # fmt: skip
        self.bot_user_id = ""
        self.team_id = ""
        self.viewing = Viewing()
        self.draining = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._checked_at = float("-inf")
        self._ready = False
        self.app = self._bolt_app(secret)
        self.edge = (  # over HTTP: what reaches POST /slack/events before Bolt
            None
            if self.socket_mode
            else HttpEdge(self.app.async_dispatch, signing_secret=secret, is_noise=self._is_noise)
        )
        self.socket = self._serve(web)

    def _bolt_app(self, secret: str) -> AsyncApp:
        """The Bolt app with the adapter's listeners (LISTENED_EVENTS, /grok, the feedback buttons)."""
        app = AsyncApp(
            client=self.client,
            signing_secret=secret,
            # Listeners only acknowledge and start a task, so Bolt may answer after them.
            process_before_response=True,
            before_authorize=DropNoise(lambda: self.bot_user_id),
            attaching_conversation_kwargs_enabled=False,
            logger=logging.getLogger("slack_bolt"),
        )
        for kind in CONVERSATION_EVENTS:
            app.event(kind)(self._on_event)
        app.event("app_home_opened")(self._on_home_opened)
        app.event("app_context_changed")(self._on_context_changed)
        app.command(COMMAND)(self._on_command)
        app.action(FEEDBACK_ACTION)(self._on_feedback)
        app.action(REASONING_ACTION)(self._on_reasoning)
        app.event(re.compile(r".+"))(self._on_other_event)
        return app

    def _serve(self, web: WebServer | None) -> AsyncSocketModeHandler | None:
        """Socket Mode's handler when an app token is set; else POST /slack/events on `web`."""
        socket: AsyncSocketModeHandler | None = None
        if self.settings.slack_app_token is not None:
            app_token = self.settings.slack_app_token.get_secret_value()
            socket = AsyncSocketModeHandler(self.app, app_token, web_client=self.client)
        elif web is not None and self.edge is not None:
            web.add_route("POST", EVENTS_PATH, self.edge.handle)
        if web is not None:
            web.add_check("slack", self.ready)
        return socket

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Open the HTTP session, learn who the bot is (auth.test), connect Socket Mode if used."""
        if self._own_http and self.client.session is None:
            self.client.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        self.platform.urls.http = self.client.session or aiohttp.ClientSession()
        try:
            await self._auth_test()
        except SlackRefused:
            raise  # a wrong token or missing scope: refuse to start
        except PlatformError as exc:
            log.warning("Slack is not reachable yet (%s); /readyz will say so until it is", exc)
        if self.socket is not None:
            await self.socket.client.connect()  # type: ignore[no-untyped-call]  # = connect_async()
        log.info("Slack adapter started (%s mode)", "Socket" if self.socket_mode else "HTTP")

    async def drain(self) -> None:
        """Take no new work, and let the answers in flight go on (`idle()` waits for them). Over
        HTTP, events get a 503 that Slack redelivers (to another instance, or to this one restarted)
        and commands a note to run them again; in Socket Mode the connection closes, so that Slack
        sends to another one. Not ready (/readyz) from now on."""
        if self.draining:
            return
        self.draining = True
        if self.edge is not None:
            self.edge.draining = True
        if self.socket is not None:
            await self.socket.client.close()  # type: ignore[no-untyped-call]

    async def stop(self, *, grace: float = STOP_GRACE_S) -> None:
        await self.drain()
        await self.idle(within=grace)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        session = self.platform.urls.http
        if session is not None and (self._own_http or session is not self.client.session):
            await session.close()
        if self._own_http:
            self.client.session = None
        self.platform.urls.http = None

    async def idle(self, *, within: float | None = None) -> bool:
        """Wait until no answer is in flight (tests, shutdown); False if `within` s passed first."""
        deadline = None if within is None else time.monotonic() + within
        while self._tasks:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return False
            await asyncio.wait(set(self._tasks), timeout=remaining)
        return True

    async def ready(self) -> bool:
        """For /readyz: the token works (auth.test, re-checked at most once a minute), Socket Mode is
        up, and the adapter is not draining."""
        if self.draining:
            return False
        if time.monotonic() - self._checked_at > READY_TTL_S:
            try:
                await self._auth_test()
            except PlatformError:
                self._ready = False
        if self.socket is not None and not await self.socket.client.is_connected():
            return False
        return self._ready

    async def _auth_test(self) -> None:
        self._checked_at = time.monotonic()
        try:
            response = await self.api.call("auth.test", self.client.auth_test, team=self.team_id or "-")
        except PlatformError:
            self._ready = False
            raise
        self.bot_user_id = str(response.get("user_id") or "")
        self.team_id = str(response.get("team_id") or "")
        self.platform.workspace_url = str(response.get("url") or "")
        self._ready = True

    def _is_noise(self, body: Mapping[str, Any]) -> bool:
        return is_noise(body, self.bot_user_id)

    def _spawn(self, work: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.get_running_loop().create_task(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("Slack work %s failed", task.get_name(), exc_info=task.exception())

    # -- listeners: acknowledge, then work in a task --------------------------------------------

    async def _on_event(self, body: dict[str, Any], event: dict[str, Any]) -> None:
        kind = str(event.get("type") or "")
        self._events.labels(kind).inc()
        self._spawn(self._converse(body, event), f"slack:{kind}")

    async def _on_other_event(self, event: dict[str, Any]) -> None:
        self._events.labels("other").inc()  # subscribed but unused: 200

    async def _on_home_opened(self, body: dict[str, Any], event: dict[str, Any]) -> None:
        """The agent view's Messages tab opened: the prompts to suggest there."""
        self._events.labels("app_home_opened").inc()
        channel = str(event.get("channel") or "")
        if event.get("tab") == "messages" and channel:
            place = Place("slack", str(body.get("team_id") or ""), channel)
            prompts = self.platform.messages.suggest_prompts(place, SUGGESTED_PROMPTS, title=PROMPTS_TITLE)
            self._spawn(prompts, "slack:prompts")

    async def _on_context_changed(self, body: dict[str, Any], event: dict[str, Any]) -> None:
        """What the person beside the agent view is looking at now."""
        self._events.labels("app_context_changed").inc()
        team = str(body.get("team_id") or "")
        self.viewing.remember(team, viewer_of(body, event), viewed_channel(event.get("context")))

    async def _on_command(self, ack: AsyncAck, command: dict[str, Any]) -> None:
        self._events.labels("command").inc()
        await ack()
        parsed = parse_command_text(unescape(str(command.get("text") or "")))
        self._spawn(self._command(command, parsed), "slack:command")

    async def _on_feedback(self, ack: AsyncAck, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        self._events.labels("feedback").inc()
        self._spawn(self.engine.feedback(feedback_of(body, action), self.platform), "slack:feedback")

    async def _on_reasoning(self, ack: AsyncAck, body: dict[str, Any], action: dict[str, Any]) -> None:
        """ "Show reasoning" under an answer: the summary the button carries, to the clicker alone."""
        await ack()
        self._events.labels("reasoning").inc()
        clicked = feedback_of(body, action)  # where and by whom; `value` is the summary
        self._spawn(self._show_reasoning(clicked), "slack:reasoning")

    async def _show_reasoning(self, clicked: Feedback) -> None:
        place = clicked.place  # in the answer's thread, where it has one
        text = f"💭 *Grok's reasoning for this answer*\n{markdown_to_mrkdwn(clicked.value)}"
        try:
            await self.platform.messages.post_ephemeral(
                place, place.thread, clicked.user_id, truncate(text, TEXT_CHARS)
            )
        except PlatformError as exc:
            log.info("could not show reasoning in %s: %s", place.channel, type(exc).__name__)

    # -- the work ------------------------------------------------------------------------------

    async def _converse(self, body: dict[str, Any], event: dict[str, Any]) -> None:
        team = str(body.get("team_id") or "")
        user = str(event.get("user") or "")
        bot_user = bot_user_of(body, self.bot_user_id)
        channel = str(event.get("channel") or "")
        recipients = self.platform.recipients
        recipients.remember(channel, str(event.get("ts") or ""), user, recipient_team(body, event))
        recipients.remember_thread(channel, thread_of(event), user, recipient_team(body, event))
        author = await self.platform.people.author(team, user)
        incoming = incoming_from_event(body, event, author=author, bot_user_id=bot_user)
        if event.get("channel_type") == "im":  # the agent view: what the person is looking at
            viewed = viewed_channel(event.get("app_context")) or self.viewing.of(team, user)
            incoming = with_viewing(incoming, viewed)
        if not await self.engine.handle(await self.platform.with_files(incoming), self.platform):
            # A redelivery (Slack retried, or another instance got it first): answered once.
            self._duplicates.inc()
            log.info("redelivery of %s dropped", incoming.event_id)

    async def _command(self, command: dict[str, Any], parsed: Command) -> None:
        team = str(command.get("team_id") or "")
        channel = str(command.get("channel_id") or "")
        user = str(command.get("user_id") or "")
        author = await self.platform.people.author(team, user)
        if author.name == user and command.get("user_name"):
            author = Author(user, str(command["user_name"]), author.is_admin, author.is_bot)
        incoming = Incoming(
            place=Place("slack", team, channel, ""),
            author=author,
            command=parsed,
            event_id=str(command.get("trigger_id") or ""),
        )
        relay = Relay.of_command(self.platform.urls, str(command.get("response_url") or ""))
        platform = CommandPlatform(self.platform, channel=channel, user=user, relay=relay)
        await self.engine.handle(incoming, platform)


def _counters(registry: CollectorRegistry) -> tuple[Counter, Counter]:
    """Deliveries handled, by kind; redeliveries dropped."""
    events = Counter(
        "grokbot_slack_events", "Slack deliveries handled, by kind.", ["kind"], registry=registry
    )
    duplicates = Counter(
        "grokbot_slack_duplicate_events", "Redelivered Slack events dropped.", registry=registry
    )
    return events, duplicates


def _credentials(settings: Settings) -> tuple[SecretStr, str]:
    """The bot token and the signing secret (none in Socket Mode); ValueError naming what is missing."""
    if settings.slack_bot_token is None:
        raise ValueError("SLACK_BOT_TOKEN is not set")
    secret = settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else ""
    if settings.slack_app_token is None and not secret:
        raise ValueError(
            "SLACK_SIGNING_SECRET is required in HTTP mode (or set SLACK_APP_TOKEN for Socket Mode)"
        )
    return settings.slack_bot_token, secret
