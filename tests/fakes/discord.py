"""A fake Discord on 127.0.0.1: the gateway websocket and the REST routes grokbot's discord.py client uses.

It follows Discord's documented behaviour so that the real discord.py code runs unchanged: gateway
opcodes (HELLO, IDENTIFY → READY + GUILD_CREATE, heartbeats, RESUME with replay, close 4004/4014),
per-route rate-limit buckets with Discord's headers, 429 bodies with `Via` (without it discord.py
treats a 429 as a Cloudflare ban), JSON error codes (50035, 50006, 40005, 10062, 40060, 50027, …),
the 3-second interaction acknowledgement, the 15-minute interaction token on an injectable clock,
multipart uploads (payload_json + files[n]) and a CDN for attachments. Each guild has the bot's
managed role (tags.bot_id), guild commands carry no global-only fields (contexts, integration_types,
dm_permission), and forwards are messages whose message_reference has type 1 with message_snapshots.
Channel permissions follow Discord's computation (roles, then @everyone, role and member overwrites;
threads use their parent's): an interaction's `app_permissions` is the bot's permissions in its
channel (in a DM, the few bits Discord sends there), and the bot's channel routes answer 403 with
50001 Missing Access or 50013 Missing Permissions where it lacks them (posting needs Send Messages, or
Send Messages in Threads in a thread; a reply Read Message History; files Attach Files), while the
interaction webhooks need no channel permission.

Tests build the world (`add_guild`, `add_channel`, `add_user`, `add_thread`, `dm_channel`,
`add_overwrite`, `deny_bot`), act as users (`user_message`, `slash`), inject faults (`inject_429`,
`drop_gateway`, `advance`) and read what users would see (`channel_messages`, `visible_text`,
`versions`, `requests`), waiting for it with `wait_until(predicate)` or `wait_for_request(route)`:
both wake on the fake's own changes (a request answered, a gateway connection), never on a timer.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import itertools
import json
import math
import mimetypes
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import BodyPartReader, WSMsgType, web

DISCORD_EPOCH_MS = 1_420_070_400_000
API_PREFIX = "/api/v10"
MAX_CONTENT = 2000
MAX_EMBEDS = 10
MAX_FILES = 10
MAX_FILE_BYTES = 10 * 1024 * 1024
MAX_REQUEST_BYTES = 25 * 1024 * 1024
ACK_DEADLINE_S = 3.0
TOKEN_LIFETIME_S = 15 * 60.0

INTENT_GUILD_MEMBERS = 1 << 1
INTENT_GUILD_PRESENCES = 1 << 8
INTENT_MESSAGE_CONTENT = 1 << 15
# Application flags (GET /applications/@me): the portal's Message Content switch, as Discord sets it
# for a verified app (over 100 servers) and for an unverified one.
APP_FLAG_MESSAGE_CONTENT = 1 << 18
APP_FLAG_MESSAGE_CONTENT_LIMITED = 1 << 19
PRIVILEGED_INTENTS = INTENT_GUILD_MEMBERS | INTENT_GUILD_PRESENCES | INTENT_MESSAGE_CONTENT

FLAG_EPHEMERAL = 1 << 6
FLAG_LOADING = 1 << 7
FLAG_HAS_SNAPSHOT = 1 << 14
FLAG_SUPPRESS_EMBEDS = 1 << 2
# What Discord unfurls into a link preview: a URL in the text or a masked link's destination,
# unless written `<url>`; nothing inside code.
_PREVIEWED = re.compile(r"(?<![<\w])https?://[^\s<>()]+")
_CODE = re.compile(r"```.*?```|`[^`\n]*`", re.DOTALL)

# Permission bits (https://discord.com/developers/docs/topics/permissions)
P_ADMINISTRATOR = 1 << 3
P_MANAGE_GUILD = 1 << 5
P_VIEW_CHANNEL = 1 << 10
P_SEND_MESSAGES = 1 << 11
P_EMBED_LINKS = 1 << 14
P_ATTACH_FILES = 1 << 15
P_READ_HISTORY = 1 << 16
P_MENTION_EVERYONE = 1 << 17
P_USE_EXTERNAL_EMOJIS = 1 << 18
P_USE_COMMANDS = 1 << 31
P_CREATE_PUBLIC_THREADS = 1 << 35
P_SEND_IN_THREADS = 1 << 38
EVERYONE_PERMISSIONS = (
    P_VIEW_CHANNEL
    | P_SEND_MESSAGES
    | P_EMBED_LINKS
    | P_ATTACH_FILES
    | P_READ_HISTORY
    | P_USE_COMMANDS
    | P_CREATE_PUBLIC_THREADS
    | P_SEND_IN_THREADS
)
ALL_PERMISSIONS = (1 << 53) - 1
# Lost with Send Messages in a text channel (Discord's implicit permissions).
NEEDS_SEND = P_MENTION_EVERYONE | P_ATTACH_FILES | P_EMBED_LINKS | (1 << 12)  # 1 << 12: Send TTS Messages
# An interaction's app_permissions in a DM with the bot: no View Channel or Send Messages bits, though
# the bot may post there.
DM_APP_PERMISSIONS = P_ATTACH_FILES | P_EMBED_LINKS | P_MENTION_EVERYONE | P_USE_EXTERNAL_EMOJIS

OPTION_TYPES = {
    "SUB_COMMAND": 1,
    "SUB_COMMAND_GROUP": 2,
    "STRING": 3,
    "INTEGER": 4,
    "BOOLEAN": 5,
    "USER": 6,
    "CHANNEL": 7,
    "ROLE": 8,
    "MENTIONABLE": 9,
    "NUMBER": 10,
    "ATTACHMENT": 11,
}


class DiscordHTTPError(Exception):
    """Raised inside a handler: becomes Discord's JSON error body."""

    def __init__(self, status: int, code: int, message: str, errors: Mapping[str, Any] | None = None) -> None:
        self.status = status
        self.code = code
        self.message = message
        self.errors = errors
        super().__init__(f"{status} {code} {message}")

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"message": self.message, "code": self.code}
        if self.errors is not None:
            body["errors"] = self.errors
        return body


def invalid_form(field_path: str, code: str, message: str) -> DiscordHTTPError:
    errors: dict[str, Any] = {"_errors": [{"code": code, "message": message}]}
    for part in reversed(field_path.split(".")):
        errors = {part: errors}
    return DiscordHTTPError(400, 50035, "Invalid Form Body", errors)


@dataclass
class UploadedFile:
    field: str
    filename: str
    content_type: str
    data: bytes


@dataclass
class RecordedRequest:
    method: str
    path: str  # after /api/v10, without the query
    route: str  # the template, e.g. "PATCH /channels/{channel_id}/messages/{message_id}"
    query: dict[str, str]
    json: Any
    files: list[UploadedFile]
    status: int = 0
    at: float = 0.0  # time.perf_counter() when it arrived
    authorization: str = ""


@dataclass
class Injected429:
    method: str
    path_pattern: re.Pattern[str]
    count: int
    retry_after: float
    scope: str  # user | shared | global


@dataclass
class Bucket:
    """A fixed window: `limit` requests per `period` seconds, opened by the first request."""

    name: str
    limit: int
    period: float
    window_start: float = -1e18
    used: int = 0

    def take(self, now: float) -> tuple[bool, int, float]:
        if now - self.window_start >= self.period:
            self.window_start, self.used = now, 0
        reset_after = self.window_start + self.period - now
        if self.used >= self.limit:
            return False, 0, reset_after
        self.used += 1
        return True, self.limit - self.used, reset_after


@dataclass(frozen=True)
class BucketRule:
    name: str
    limit: int
    period: float
    major: tuple[str, ...]  # path parameters that split the bucket (Discord's "top-level resources")


@dataclass
class Route:
    method: str
    template: str
    pattern: re.Pattern[str]
    handler: Callable[[Request], Awaitable[tuple[int, Any]]]
    bucket: BucketRule | None
    auth: bool = True  # interaction callbacks and webhook tokens carry their own credentials
    global_limit: bool = True  # interaction endpoints are exempt from the global limit


@dataclass
class Request:
    method: str
    params: dict[str, str]
    query: dict[str, str]
    json: Any
    files: list[UploadedFile]


@dataclass
class FakeInteraction:
    id: str
    token: str
    name: str
    channel_id: str
    guild_id: str
    user_id: str
    created_at: float  # fake clock
    acked: bool = False
    response_type: int = 0
    ephemeral: bool = False
    original_id: str = ""
    original_edited: bool = False
    original_deleted: bool = False
    followups: list[str] = field(default_factory=list)


@dataclass
class GatewaySession:
    id: str
    intents: int
    seq: int = 0
    events: list[tuple[int, str]] = field(default_factory=list)  # (seq, raw frame)
    ws: web.WebSocketResponse | None = None
    transport: Any = None
    outbox: asyncio.Queue[str | None] | None = None
    resumes: int = 0


class FakeDiscord:
    """Discord's gateway and REST API for one bot, on an ephemeral loopback port."""

    def __init__(
        self,
        *,
        token: str = "fake-bot-token.Gx1234.abcdefghijklmnopqrstuvwxyz0123",
        bot_name: str = "grokbot",
        message_content_enabled: bool = True,
        heartbeat_interval_ms: int = 41_250,
        clock: Callable[[], float] = time.time,
        channel_send_limit: tuple[int, float] = (5, 5.0),
        channel_edit_limit: tuple[int, float] = (5, 5.0),
        webhook_limit: tuple[int, float] = (5, 2.0),
        global_limit_per_s: int = 50,
    ) -> None:
        self.token = token
        self.message_content_enabled = message_content_enabled  # the portal's "Message Content Intent"
        self.verified = False  # an unverified app's switch sets the _LIMITED flag
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.ack_delay_s = 0.005
        self._clock = clock
        self._offset = 0.0
        self._counter = itertools.count(1)
        self._last_id = 0
        self.application_id = self.snowflake()
        self.bot_user = self._user_payload(self.application_id, bot_name, bot=True)
        self.bot_user_id = self.application_id
        self.users: dict[str, dict[str, Any]] = {}
        self.guilds: dict[str, dict[str, Any]] = {}
        self.members: dict[str, dict[str, dict[str, Any]]] = {}  # guild -> user -> member payload
        self.channels: dict[str, dict[str, Any]] = {}
        self.channel_guild: dict[str, str] = {}
        self.messages: dict[str, dict[str, Any]] = {}
        self.channel_order: dict[str, list[str]] = {}
        self.message_versions: dict[str, list[str]] = {}
        self.version_times: dict[str, list[float]] = {}  # time.perf_counter() of each version
        self.cdn: dict[str, tuple[str, bytes]] = {}
        self.interactions: dict[str, FakeInteraction] = {}
        self.commands: dict[str, list[dict[str, Any]]] = {"global": []}  # "global" or guild id
        self.requests: list[RecordedRequest] = []
        self.rate_limited: list[RecordedRequest] = []  # every 429 answered
        self.typing: list[tuple[str, float]] = []
        self.sessions: dict[str, GatewaySession] = {}
        self.session: GatewaySession | None = None
        self.gateway_connections: list[str] = []  # path of every websocket connection
        self.identifies = 0
        self.heartbeats = 0
        self.ack_deadline_s = ACK_DEADLINE_S
        self._injected: list[Injected429] = []
        self._buckets: dict[str, Bucket] = {}
        self._global = Bucket("global", global_limit_per_s, 1.0)
        self._changed = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.port = 0
        self._routes = self._build_routes(channel_send_limit, channel_edit_limit, webhook_limit)

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        app = web.Application(client_max_size=MAX_REQUEST_BYTES + 1024 * 1024)
        app.router.add_get("/gateway/", self._gateway)
        app.router.add_get("/resume-gateway/", self._gateway)
        app.router.add_get("/attachments/{channel}/{attachment}/{filename}", self._cdn)
        app.router.add_route("*", API_PREFIX + "/{tail:.*}", self._rest)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=1.0, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        for session in self.sessions.values():
            if session.ws is not None and not session.ws.closed:
                await session.ws.close(code=1001)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeDiscord:
        await self.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.stop()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def rest_url(self) -> str:
        """For DISCORD_API_BASE_URL / discord.http.Route.BASE."""
        return self.base + API_PREFIX

    @property
    def gateway_url(self) -> str:
        """For DISCORD_GATEWAY_URL / DiscordWebSocket.DEFAULT_GATEWAY."""
        return f"ws://127.0.0.1:{self.port}/gateway/"

    # -- clock and ids --------------------------------------------------------------------------

    def now(self) -> float:
        return self._clock() + self._offset

    def advance(self, seconds: float) -> None:
        """Move the fake's clock (interaction deadlines, token expiry, timestamps) forward."""
        self._offset += seconds

    def snowflake(self) -> str:
        value = (int(self.now() * 1000) - DISCORD_EPOCH_MS) << 22 | (next(self._counter) & 0xFFF)
        value = max(value, self._last_id + 1)
        self._last_id = value
        return str(value)

    def _timestamp(self) -> str:
        return datetime.fromtimestamp(self.now(), UTC).isoformat()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_until(self, predicate: Callable[[], bool], *, within: float = 10.0) -> None:
        """Wait until `predicate()` holds, looking again after each change in the fake (a request
        answered, a gateway connection, identify or resume); AssertionError if `within` s pass first.
        The predicate must read the fake's state: nothing else wakes the wait."""
        try:
            async with asyncio.timeout(within):
                while not predicate():
                    await self._changed.wait()
        except TimeoutError:
            raise AssertionError("condition not reached in time") from None

    async def wait_for_request(
        self, route_prefix: str, *, status: int | None = None, count: int = 1, within: float = 10.0
    ) -> RecordedRequest:
        """The `count`-th request to a route starting with `route_prefix` (e.g. "PATCH /webhooks") that
        the fake has answered, with `status` if given; waits for it (AssertionError after `within` s)."""

        def answered() -> list[RecordedRequest]:
            found = [r for r in self.requests_to(route_prefix) if r.status]
            return [r for r in found if status is None or r.status == status]

        await self.wait_until(lambda: len(answered()) >= count, within=within)
        return answered()[count - 1]

    # -- the world ------------------------------------------------------------------------------

    @staticmethod
    def _user_payload(user_id: str, name: str, *, bot: bool = False) -> dict[str, Any]:
        return {
            "id": user_id,
            "username": name,
            "discriminator": "0",
            "global_name": None if bot else name.title(),
            "avatar": None,
            "bot": bot,
            "public_flags": 0,
            "flags": 0,
        }

    def add_guild(self, name: str = "Test guild", *, owner: str = "") -> str:
        guild_id = self.snowflake()
        owner_id = owner or self.add_user(f"owner-{guild_id[-4:]}")
        self.guilds[guild_id] = {
            "id": guild_id,
            "name": name,
            "icon": None,
            "owner_id": owner_id,
            "roles": [self._role_payload(guild_id, "@everyone", EVERYONE_PERMISSIONS, position=0)],
            "features": [],
            "emojis": [],
            "stickers": [],
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "nsfw_level": 0,
            "premium_tier": 0,
            "preferred_locale": "en-US",
            "system_channel_id": None,
            "afk_channel_id": None,
            "afk_timeout": 300,
            "application_id": None,
            "description": None,
        }
        # Adding a bot creates its managed role (tags.bot_id); Discord's client may complete
        # "@grokbot" to this role, so users mention the bot as <@&role> too.
        bot_role = self.snowflake()
        managed = self._role_payload(bot_role, self.bot_user["username"], EVERYONE_PERMISSIONS, position=1)
        managed.update(managed=True, tags={"bot_id": self.application_id})
        self.guilds[guild_id]["roles"].append(managed)
        self.members[guild_id] = {}
        self._add_member(guild_id, self.application_id, roles=(bot_role,))
        if owner_id in self.users:
            self._add_member(guild_id, owner_id, roles=())
        return guild_id

    @staticmethod
    def _role_payload(role_id: str, name: str, permissions: int, *, position: int) -> dict[str, Any]:
        return {
            "id": role_id,
            "name": name,
            "permissions": str(permissions),
            "position": position,
            "color": 0,
            "hoist": False,
            "managed": False,
            "mentionable": False,
            "flags": 0,
        }

    def bot_role(self, guild_id: str) -> str:
        """The bot's managed role in a guild."""
        roles = self.guilds[guild_id]["roles"]
        return next(r["id"] for r in roles if (r.get("tags") or {}).get("bot_id") == self.application_id)

    def add_role(self, guild_id: str, name: str, *, permissions: int = 0) -> str:
        role_id = self.snowflake()
        roles = self.guilds[guild_id]["roles"]
        roles.append(self._role_payload(role_id, name, permissions, position=len(roles)))
        return role_id

    def add_channel(self, guild_id: str, name: str = "general") -> str:
        channel_id = self.snowflake()
        self.channels[channel_id] = {
            "id": channel_id,
            "type": 0,
            "guild_id": guild_id,
            "name": name,
            "position": len(self.channel_order),
            "permission_overwrites": [],
            "parent_id": None,
            "topic": None,
            "nsfw": False,
            "rate_limit_per_user": 0,
            "last_message_id": None,
            "flags": 0,
        }
        self.channel_guild[channel_id] = guild_id
        self.channel_order[channel_id] = []
        return channel_id

    def add_user(self, name: str, *, guild_id: str = "", roles: Sequence[str] = ()) -> str:
        user_id = self.snowflake()
        self.users[user_id] = self._user_payload(user_id, name)
        if guild_id:
            self._add_member(guild_id, user_id, roles=roles)
        return user_id

    def _add_member(self, guild_id: str, user_id: str, *, roles: Sequence[str]) -> None:
        user = self.bot_user if user_id == self.application_id else self.users[user_id]
        self.members[guild_id][user_id] = {
            "user": user,
            "nick": None,
            "avatar": None,
            "roles": list(roles),
            "joined_at": self._timestamp(),
            "premium_since": None,
            "deaf": False,
            "mute": False,
            "flags": 0,
            "pending": False,
            "communication_disabled_until": None,
        }

    def member_permissions(self, guild_id: str, user_id: str) -> int:
        """Guild-wide permissions: @everyone and the member's roles (all for the owner and admins)."""
        guild = self.guilds[guild_id]
        if guild["owner_id"] == user_id:
            return ALL_PERMISSIONS
        member = self.members[guild_id][user_id]
        total = 0
        for role in guild["roles"]:
            if role["id"] == guild_id or role["id"] in member["roles"]:
                total |= int(role["permissions"])
        return ALL_PERMISSIONS if total & P_ADMINISTRATOR else total

    def add_overwrite(self, channel_id: str, target_id: str, *, allow: int = 0, deny: int = 0) -> None:
        """A permission overwrite on a guild channel for a role (the guild id: @everyone) or a member
        (the bot's id too); threads follow their parent's. Dispatched as CHANNEL_UPDATE once connected."""
        channel = self.channels[channel_id]
        guild_id = self.channel_guild[channel_id]
        if channel["type"] == 11:
            raise AssertionError("threads have no overwrites of their own: set them on the parent")
        is_role = any(r["id"] == target_id for r in self.guilds[guild_id]["roles"])
        overwrites = [o for o in channel["permission_overwrites"] if o["id"] != target_id]
        overwrites.append(
            {"id": target_id, "type": 0 if is_role else 1, "allow": str(allow), "deny": str(deny)}
        )
        channel["permission_overwrites"] = overwrites
        self._dispatch_soon("CHANNEL_UPDATE", channel)

    def deny_bot(self, channel_id: str, permissions: int) -> None:
        """Deny the bot `permissions` in a channel (a member overwrite), e.g. P_SEND_MESSAGES."""
        self.add_overwrite(channel_id, self.application_id, deny=permissions)

    def channel_permissions(self, channel_id: str, user_id: str) -> int:
        """A member's permissions in a guild channel, as Discord computes them: the guild-wide ones, then
        the channel's @everyone, role and member overwrites; nothing without View Channel, and none of
        the sending extras without Send Messages (text channels). A thread uses its parent's."""
        channel = self.channels[channel_id]
        if channel["type"] == 11:
            channel = self.channels[channel["parent_id"]]
        guild_id = self.channel_guild[channel["id"]]
        permissions = self.member_permissions(guild_id, user_id)
        if permissions & P_ADMINISTRATOR or permissions == ALL_PERMISSIONS:
            return ALL_PERMISSIONS
        overwrites = {o["id"]: o for o in channel["permission_overwrites"]}
        everyone = overwrites.get(guild_id)
        if everyone is not None:
            permissions = (permissions & ~int(everyone["deny"])) | int(everyone["allow"])
        allow = deny = 0
        for role_id in self.members[guild_id][user_id]["roles"]:
            if (role := overwrites.get(role_id)) is not None:
                allow |= int(role["allow"])
                deny |= int(role["deny"])
        permissions = (permissions & ~deny) | allow
        if (member := overwrites.get(user_id)) is not None and member["type"] == 1:
            permissions = (permissions & ~int(member["deny"])) | int(member["allow"])
        if not permissions & P_VIEW_CHANNEL:
            return 0
        if not permissions & P_SEND_MESSAGES:
            permissions &= ~NEEDS_SEND
        return permissions

    def add_thread(self, parent_id: str, name: str = "thread", *, starter_message_id: str = "") -> str:
        """A public thread (from a message: its id is the message's id, as on Discord)."""
        thread_id = starter_message_id or self.snowflake()
        guild_id = self.channel_guild[parent_id]
        self.channels[thread_id] = {
            "id": thread_id,
            "type": 11,
            "guild_id": guild_id,
            "parent_id": parent_id,
            "owner_id": next(iter(self.users), self.application_id),
            "name": name,
            "last_message_id": None,
            "message_count": 0,
            "member_count": 1,
            "total_message_sent": 0,
            "rate_limit_per_user": 0,
            "flags": 0,
            "thread_metadata": {
                "archived": False,
                "auto_archive_duration": 1440,
                "archive_timestamp": self._timestamp(),
                "locked": False,
                "create_timestamp": self._timestamp(),
            },
        }
        self.channel_guild[thread_id] = guild_id
        self.channel_order[thread_id] = []
        if starter_message_id:
            self.messages[starter_message_id]["thread"] = self.channels[thread_id]
        if self.session is not None:
            self._dispatch_soon("THREAD_CREATE", {**self.channels[thread_id], "newly_created": True})
        return thread_id

    def dm_channel(self, user_id: str) -> str:
        for channel in self.channels.values():
            if channel["type"] == 1 and channel["recipients"][0]["id"] == user_id:
                return str(channel["id"])
        channel_id = self.snowflake()
        self.channels[channel_id] = {
            "id": channel_id,
            "type": 1,
            "last_message_id": None,
            "recipients": [self.users[user_id]],
            "flags": 0,
        }
        self.channel_order[channel_id] = []
        return channel_id

    # -- what users see -------------------------------------------------------------------------

    def channel_messages(self, channel_id: str, *, include_ephemeral: bool = False) -> list[dict[str, Any]]:
        """Messages of a channel, oldest first (ephemeral ones only when asked)."""
        found = [self.messages[m] for m in self.channel_order.get(channel_id, [])]
        return [m for m in found if include_ephemeral or not m["flags"] & FLAG_EPHEMERAL]

    def bot_messages(self, channel_id: str, *, include_ephemeral: bool = False) -> list[dict[str, Any]]:
        return [
            m
            for m in self.channel_messages(channel_id, include_ephemeral=include_ephemeral)
            if m["author"]["id"] == self.bot_user_id
        ]

    def visible_text(self, channel_id: str) -> str:
        """The bot's public messages in a channel, joined (what readers see)."""
        return "".join(m["content"] for m in self.bot_messages(channel_id))

    def link_previews(self, message_id: str) -> list[str]:
        """The URLs Discord would show a preview (an embed) for in the message as it is now."""
        message = self.messages[message_id]
        if message["flags"] & FLAG_SUPPRESS_EMBEDS:
            return []
        return _PREVIEWED.findall(_CODE.sub("", message["content"]))

    def versions(self, message_id: str) -> list[str]:
        """Every content the message had, in order (the first post, then each edit)."""
        return self.message_versions.get(message_id, [])

    def requests_to(self, route_prefix: str) -> list[RecordedRequest]:
        """Recorded requests whose route starts with e.g. "PATCH /webhooks"."""
        return [r for r in self.requests if r.route.startswith(route_prefix)]

    # -- faults ---------------------------------------------------------------------------------

    def inject_429(
        self,
        method: str,
        path_regex: str,
        *,
        count: int = 1,
        retry_after: float = 0.2,
        scope: str = "user",
    ) -> None:
        """Answer the next `count` matching requests with 429 (scope: user | shared | global)."""
        self._injected.append(Injected429(method, re.compile(path_regex), count, retry_after, scope))

    async def drop_gateway(self, *, code: int | None = 4000) -> None:
        """Close the bot's websocket with `code`, or cut the TCP connection (1006) when None.

        Dispatches made until the bot resumes are kept and replayed after its RESUME."""
        session = self.session
        if session is None or session.ws is None:
            return
        ws, transport = session.ws, session.transport
        session.ws = session.outbox = None
        if code is None:
            transport.abort()
        else:
            await ws.close(code=code, message=b"fake: connection dropped")

    # -- gateway --------------------------------------------------------------------------------

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True, max_msg_size=0)
        await ws.prepare(request)
        self.gateway_connections.append(request.path)
        self._notify()
        outbox: asyncio.Queue[str | None] = asyncio.Queue()
        writer = asyncio.create_task(self._write(ws, outbox))
        outbox.put_nowait(json.dumps({"op": 10, "d": {"heartbeat_interval": self.heartbeat_interval_ms}}))
        session: GatewaySession | None = None
        try:
            async for msg in ws:
                if msg.type is WSMsgType.BINARY:
                    await ws.close(code=4002, message=b"Error while decoding payload.")
                    break
                if msg.type is not WSMsgType.TEXT:
                    continue
                payload = json.loads(msg.data)
                op, data = payload.get("op"), payload.get("d")
                if op == 1:
                    self.heartbeats += 1
                    # A few ms of round trip, as on a network: discord.py's heartbeat thread records
                    # the send after the loop did, and an instant ACK makes it log "can't keep up".
                    asyncio.get_running_loop().call_later(self.ack_delay_s, outbox.put_nowait, '{"op": 11}')
                elif op == 2:
                    session = await self._identify(ws, request, outbox, data)
                elif op == 6:
                    session = await self._resume(ws, request, outbox, data)
                elif op in (3, 4, 8):
                    continue
                else:
                    await ws.close(code=4001, message=b"Unknown opcode.")
                    break
        finally:
            outbox.put_nowait(None)
            await writer
            if session is not None and session.ws is ws:
                session.ws = session.outbox = None
            self._notify()
        return ws

    @staticmethod
    async def _write(ws: web.WebSocketResponse, outbox: asyncio.Queue[str | None]) -> None:
        """One writer per connection keeps frames in sequence order."""
        while (frame := await outbox.get()) is not None:
            if ws.closed:
                continue  # missed: a RESUME replays dispatches
            try:
                await ws.send_str(frame)
            except ConnectionError:
                continue

    async def _identify(
        self, ws: web.WebSocketResponse, request: web.Request, outbox: asyncio.Queue[str | None], data: Any
    ) -> GatewaySession | None:
        if data.get("token") != self.token:
            await ws.close(code=4004, message=b"Authentication failed.")
            return None
        intents = data.get("intents")
        if not isinstance(intents, int):
            await ws.close(code=4013, message=b"Invalid intent(s).")
            return None
        if intents & INTENT_MESSAGE_CONTENT and not self.message_content_enabled:
            await ws.close(code=4014, message=b"Disallowed intent(s).")
            return None
        self.identifies += 1
        session = GatewaySession(
            id=secrets.token_hex(16), intents=intents, ws=ws, transport=request.transport, outbox=outbox
        )
        self.sessions[session.id] = session
        self.session = session
        ready = {
            "v": 10,
            "user": {**self.bot_user, "verified": True, "mfa_enabled": False, "email": None},
            "guilds": [{"id": g, "unavailable": True} for g in self.guilds],
            "session_id": session.id,
            "session_type": "normal",
            "resume_gateway_url": f"ws://127.0.0.1:{self.port}/resume-gateway/",
            "application": {"id": self.application_id, "flags": self.application_flags},
            "private_channels": [],
            "relationships": [],
            "user_settings": {},
            "geo_ordered_rtc_regions": [],
            "_trace": ["fake-discord"],
        }
        self._dispatch_to(session, "READY", ready)
        for guild_id in self.guilds:
            self._dispatch_to(session, "GUILD_CREATE", self._guild_create(guild_id))
        self._notify()
        return session

    async def _resume(
        self, ws: web.WebSocketResponse, request: web.Request, outbox: asyncio.Queue[str | None], data: Any
    ) -> GatewaySession | None:
        session = self.sessions.get(data.get("session_id", ""))
        if data.get("token") != self.token:
            await ws.close(code=4004, message=b"Authentication failed.")
            return None
        if session is None or data.get("seq") is None or data["seq"] > session.seq:
            outbox.put_nowait(json.dumps({"op": 9, "d": False}))
            return None
        previous = session.ws
        session.ws, session.transport, session.outbox = ws, request.transport, outbox
        for seq, frame in session.events:
            if seq > data["seq"]:
                outbox.put_nowait(frame)
        session.resumes += 1
        self._dispatch_to(session, "RESUMED", {"_trace": ["fake-discord"]})
        if previous is not None and previous is not ws and not previous.closed:
            await previous.close(code=4000)
        self._notify()
        return session

    def _guild_create(self, guild_id: str) -> dict[str, Any]:
        guild = self.guilds[guild_id]
        channels = [c for c in self.channels.values() if c.get("guild_id") == guild_id]
        return {
            **guild,
            "unavailable": False,
            "large": False,
            "joined_at": self._timestamp(),
            "member_count": len(self.members[guild_id]),
            "members": [self.members[guild_id][self.application_id]],
            "channels": [c for c in channels if c["type"] != 11],
            "threads": [c for c in channels if c["type"] == 11],
            "voice_states": [],
            "presences": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
        }

    def _dispatch_to(self, session: GatewaySession, event: str, data: Any) -> None:
        """Number the dispatch, keep it for RESUME, and queue it on the live connection (if any)."""
        session.seq += 1
        frame = json.dumps({"op": 0, "s": session.seq, "t": event, "d": data})
        session.events.append((session.seq, frame))
        if session.outbox is not None:
            session.outbox.put_nowait(frame)

    async def dispatch(self, event: str, data: Any) -> None:
        """Send a dispatch to the bot (kept for RESUME while it is disconnected)."""
        if self.session is None:
            raise AssertionError("the bot has not identified yet")
        self._dispatch_to(self.session, event, copy.deepcopy(data))
        await asyncio.sleep(0)

    def _dispatch_soon(self, event: str, data: Any) -> None:
        """Dispatch from a synchronous path, in order with every other dispatch."""
        if self.session is not None:
            self._dispatch_to(self.session, event, copy.deepcopy(data))

    def _as_seen_by_bot(self, message: dict[str, Any]) -> dict[str, Any]:
        """Without the Message Content intent, content is empty unless it mentions the bot or is a DM."""
        session = self.session
        if session is None or session.intents & INTENT_MESSAGE_CONTENT:
            return message
        if "guild_id" not in message or message["author"]["id"] == self.bot_user_id:
            return message
        if any(u["id"] == self.bot_user_id for u in message["mentions"]):
            return message
        return {**message, "content": "", "embeds": [], "attachments": [], "components": []}

    async def wait_ready(self, *, within: float = 10.0) -> None:
        """Wait until the bot has identified (READY and GUILD_CREATE sent)."""
        await self.wait_until(lambda: self.session is not None and self.session.ws is not None, within=within)

    # -- users acting ---------------------------------------------------------------------------

    async def user_message(
        self,
        channel_id: str,
        author_id: str,
        content: str,
        *,
        mention_bot: bool = False,
        mention_bot_role: bool = False,
        reply_to: str = "",
        forward_of: str = "",
        attachments: Sequence[tuple[str, bytes]] = (),
        content_type: str | None = None,
    ) -> dict[str, Any]:
        """A user posts a message (dispatched as MESSAGE_CREATE). `mention_bot` prefixes `<@bot>`,
        `mention_bot_role` the bot's managed role `<@&role>`; `forward_of` forwards that message."""
        if mention_bot:
            content = f"<@{self.bot_user_id}> {content}"
        if mention_bot_role:
            content = f"<@&{self.bot_role(self.channel_guild[channel_id])}> {content}"
        if forward_of and (content or attachments or reply_to):
            raise AssertionError("a forward carries nothing of its own")
        files = [
            UploadedFile(f"files[{i}]", name, content_type or _guess_type(name, data), data)
            for i, (name, data) in enumerate(attachments)
        ]
        message = self._new_message(
            channel_id,
            author_id=author_id,
            content=content,
            files=files,
            reference=({"message_id": reply_to} if reply_to else None),
            mentions_replied=True,
        )
        if forward_of:
            self._make_forward(message, self.messages[forward_of])
        await self.dispatch("MESSAGE_CREATE", self._as_seen_by_bot(message))
        return message

    def _make_forward(self, message: dict[str, Any], original: Mapping[str, Any]) -> None:
        """A forward: type 0 DEFAULT, empty content, message_reference.type 1 FORWARD, the original in
        message_snapshots, and no referenced_message."""
        message["message_reference"] = {
            "type": 1,
            "message_id": original["id"],
            "channel_id": original["channel_id"],
            **({"guild_id": original["guild_id"]} if original.get("guild_id") else {}),
        }
        snapshot_keys = ("type", "content", "embeds", "attachments", "timestamp", "edited_timestamp", "flags")
        message["message_snapshots"] = [
            {
                "message": {
                    **{k: copy.deepcopy(original[k]) for k in snapshot_keys},
                    "mentions": [],
                    "mention_roles": [],
                    "components": [],
                }
            }
        ]
        message["flags"] |= FLAG_HAS_SNAPSHOT

    async def slash(
        self,
        name: str,
        options: Mapping[str, Any] | None = None,
        *,
        channel_id: str,
        user_id: str,
        subcommand: str = "",
        attachments: Mapping[str, tuple[str, bytes]] | None = None,
    ) -> FakeInteraction:
        """A user runs a registered slash command (dispatched as INTERACTION_CREATE).

        `options` are raw values (str/int/float/bool; a user id for USER options, an attachment option's
        value is taken from `attachments[name] = (filename, bytes)`).
        """
        guild_id = self.channel_guild.get(channel_id, "")
        command = self._find_command(name, guild_id)
        option_defs = command.get("options", [])
        resolved: dict[str, dict[str, Any]] = {}
        if subcommand:
            sub = next((o for o in option_defs if o["name"] == subcommand and o["type"] == 1), None)
            if sub is None:
                raise AssertionError(f"/{name} has no subcommand {subcommand!r}")
            inner = self._options(
                sub.get("options", []), options or {}, attachments or {}, resolved, guild_id
            )
            data_options = [{"name": subcommand, "type": 1, "options": inner}]
        else:
            data_options = self._options(option_defs, options or {}, attachments or {}, resolved, guild_id)
        interaction_id = self.snowflake()
        token = "aW50ZXJhY3Rpb246" + secrets.token_urlsafe(48)
        interaction = FakeInteraction(
            id=interaction_id,
            token=token,
            name=name,
            channel_id=channel_id,
            guild_id=guild_id,
            user_id=user_id,
            created_at=self.now(),
        )
        self.interactions[interaction_id] = interaction
        channel = self.channels[channel_id]
        data: dict[str, Any] = {"id": command["id"], "name": name, "type": 1, "options": data_options}
        if resolved:
            data["resolved"] = resolved
        if command.get("guild_id"):
            data["guild_id"] = command["guild_id"]
        payload: dict[str, Any] = {
            "id": interaction_id,
            "application_id": self.application_id,
            "type": 2,
            "data": data,
            "channel_id": channel_id,
            "channel": {k: v for k, v in channel.items() if k != "recipients"},
            "token": token,
            "version": 1,
            "locale": "en-US",
            "entitlements": [],
            "attachment_size_limit": MAX_FILE_BYTES,
            # The bot's permissions in this channel (Discord sends the integer as a string).
            "app_permissions": str(
                self.channel_permissions(channel_id, self.application_id) if guild_id else DM_APP_PERMISSIONS
            ),
        }
        if guild_id:
            member = self.members[guild_id][user_id]
            permissions = self.channel_permissions(channel_id, user_id)  # overwrites included
            payload.update(
                guild_id=guild_id,
                guild_locale="en-US",
                member={**member, "permissions": str(permissions)},
                authorizing_integration_owners={"0": guild_id},
                context=0,
            )
        else:
            payload.update(user=self.users[user_id], authorizing_integration_owners={"0": "0"}, context=1)
        await self.dispatch("INTERACTION_CREATE", payload)
        return interaction

    def _find_command(self, name: str, guild_id: str) -> dict[str, Any]:
        for scope in (guild_id, "global"):
            for command in self.commands.get(scope, []):
                if command["name"] == name:
                    return command
        raise AssertionError(f"/{name} is not registered (global or for guild {guild_id})")

    def _options(
        self,
        definitions: list[dict[str, Any]],
        values: Mapping[str, Any],
        attachments: Mapping[str, tuple[str, bytes]],
        resolved: dict[str, dict[str, Any]],
        guild_id: str,
    ) -> list[dict[str, Any]]:
        by_name = {d["name"]: d for d in definitions}
        given = dict(values)
        for key in attachments:
            given[key] = None
        out: list[dict[str, Any]] = []
        for definition in definitions:
            if definition.get("required") and definition["name"] not in given:
                raise AssertionError(f"required option {definition['name']!r} missing")
        for key, value in given.items():
            if key not in by_name:
                raise AssertionError(f"unknown option {key!r}")
            definition = by_name[key]
            kind = definition["type"]
            if kind == OPTION_TYPES["ATTACHMENT"]:
                filename, blob = attachments[key]
                attachment = self._store_attachment("0", filename, _guess_type(filename, blob), blob)
                resolved.setdefault("attachments", {})[attachment["id"]] = attachment
                value = attachment["id"]
            elif kind == OPTION_TYPES["USER"]:
                resolved.setdefault("users", {})[value] = self.users[value]
                if guild_id:
                    member = {k: v for k, v in self.members[guild_id][value].items() if k != "user"}
                    member["permissions"] = str(self.member_permissions(guild_id, value))
                    resolved.setdefault("members", {})[value] = member
            elif kind == OPTION_TYPES["CHANNEL"]:
                channel = self.channels[value]
                resolved.setdefault("channels", {})[value] = {
                    "id": value,
                    "type": channel["type"],
                    "name": channel.get("name", ""),
                    "permissions": str(EVERYONE_PERMISSIONS),
                    **({"parent_id": channel["parent_id"]} if channel.get("parent_id") else {}),
                }
            choices = definition.get("choices")
            if choices and value not in [c["value"] for c in choices]:
                raise AssertionError(f"{value!r} is not a choice of {key!r}")
            out.append({"name": key, "type": kind, "value": value})
        return out

    # -- messages -------------------------------------------------------------------------------

    def _store_attachment(
        self, channel_id: str, filename: str, content_type: str, data: bytes
    ) -> dict[str, Any]:
        attachment_id = self.snowflake()
        path = f"/attachments/{channel_id}/{attachment_id}/{filename}"
        self.cdn[path] = (content_type, data)
        expires = format(int(self.now()) + 86_400, "x")
        url = f"{self.base}{path}?ex={expires}&is={format(int(self.now()), 'x')}&hm={secrets.token_hex(32)}&"
        return {
            "id": attachment_id,
            "filename": filename,
            "size": len(data),
            "url": url,
            "proxy_url": url,
            "content_type": content_type,
            **({"width": 64, "height": 64} if content_type.startswith("image/") else {}),
        }

    def _new_message(
        self,
        channel_id: str,
        *,
        author_id: str,
        content: str = "",
        embeds: Sequence[dict[str, Any]] = (),
        files: Sequence[UploadedFile] = (),
        attachment_meta: Sequence[dict[str, Any]] = (),
        reference: Mapping[str, Any] | None = None,
        flags: int = 0,
        interaction: FakeInteraction | None = None,
        mentions_replied: bool = True,
    ) -> dict[str, Any]:
        channel = self.channels.get(channel_id)
        if channel is None:
            raise DiscordHTTPError(404, 10003, "Unknown Channel")
        guild_id = self.channel_guild.get(channel_id)
        is_bot = author_id == self.bot_user_id
        author = self.bot_user if is_bot else self.users[author_id]
        descriptions = {str(a.get("id")): a.get("description") for a in attachment_meta}
        attachments = []
        for index, upload in enumerate(files):
            stored = self._store_attachment(channel_id, upload.filename, upload.content_type, upload.data)
            if descriptions.get(str(index)):
                stored["description"] = descriptions[str(index)]
            attachments.append(stored)
        mentions = [
            self._mention(uid, guild_id)
            for uid in dict.fromkeys(re.findall(r"<@!?(\d+)>", content))
            if uid in self.users or uid == self.bot_user_id
        ]
        message: dict[str, Any] = {
            "id": self.snowflake(),
            "channel_id": channel_id,
            "author": author,
            "content": content.strip(),  # Discord trims content
            "timestamp": self._timestamp(),
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": False,
            "mentions": mentions,
            "mention_roles": [
                role_id
                for role_id in dict.fromkeys(re.findall(r"<@&(\d+)>", content))
                if guild_id and any(r["id"] == role_id for r in self.guilds[guild_id]["roles"])
            ],
            "attachments": attachments,
            "embeds": list(embeds),
            "pinned": False,
            "type": 0,
            "flags": flags,
            "components": [],
        }
        if guild_id:
            message["guild_id"] = guild_id
            member = self.members[guild_id].get(author_id)
            if member is not None:
                message["member"] = {k: v for k, v in member.items() if k != "user"}
        if reference is not None:
            referenced = self.messages.get(str(reference.get("message_id", "")))
            if referenced is None or referenced["channel_id"] != channel_id:
                if reference.get("fail_if_not_exists", True):
                    raise invalid_form(
                        "message_reference", "MESSAGE_REFERENCE_UNKNOWN_MESSAGE", "Unknown message"
                    )
            else:
                message["type"] = 19
                message["message_reference"] = {
                    "type": 0,
                    "message_id": referenced["id"],
                    "channel_id": channel_id,
                    **({"guild_id": guild_id} if guild_id else {}),
                }
                message["referenced_message"] = {
                    k: v for k, v in referenced.items() if k != "referenced_message"
                }
                replied = referenced["author"]
                if mentions_replied and all(m["id"] != replied["id"] for m in mentions):
                    mentions.append(self._mention(replied["id"], guild_id))
        if interaction is not None:
            message["type"] = 20
            message["webhook_id"] = self.application_id
            message["application_id"] = self.application_id
            message["interaction_metadata"] = {
                "id": interaction.id,
                "type": 2,
                "name": interaction.name,
                "user": self.users[interaction.user_id],
                "authorizing_integration_owners": {"0": interaction.guild_id or "0"},
            }
        self.messages[message["id"]] = message
        self.channel_order[channel_id].append(message["id"])
        self.message_versions[message["id"]] = [message["content"]]
        self.version_times[message["id"]] = [time.perf_counter()]
        channel["last_message_id"] = message["id"]
        if channel["type"] == 11:
            channel["message_count"] += 1
            channel["total_message_sent"] += 1
            channel["thread_metadata"]["archived"] = False
        self._notify()
        return message

    def _mention(self, user_id: str, guild_id: str | None) -> dict[str, Any]:
        user = self.bot_user if user_id == self.bot_user_id else self.users[user_id]
        if guild_id and user_id in self.members.get(guild_id, {}):
            member = {k: v for k, v in self.members[guild_id][user_id].items() if k != "user"}
            return {**user, "member": member}
        return dict(user)

    def _edit_message(
        self, message: dict[str, Any], body: Mapping[str, Any], files: Sequence[UploadedFile]
    ) -> None:
        if "content" in body:
            message["content"] = (body["content"] or "").strip()  # Discord trims content
        if "embeds" in body:
            message["embeds"] = body["embeds"] or []
        if "flags" in body and body["flags"] is not None:
            message["flags"] = (message["flags"] & (FLAG_EPHEMERAL | FLAG_LOADING)) | int(body["flags"])
        if "attachments" in body or files:
            keep_ids = {str(a["id"]) for a in body.get("attachments") or [] if len(str(a["id"])) > 6}
            kept = (
                [a for a in message["attachments"] if a["id"] in keep_ids]
                if "attachments" in body
                else list(message["attachments"])
            )
            descriptions = {str(a.get("id")): a.get("description") for a in body.get("attachments") or []}
            for index, upload in enumerate(files):
                stored = self._store_attachment(
                    message["channel_id"], upload.filename, upload.content_type, upload.data
                )
                if descriptions.get(str(index)):
                    stored["description"] = descriptions[str(index)]
                kept.append(stored)
            message["attachments"] = kept
        message["flags"] &= ~FLAG_LOADING
        message["edited_timestamp"] = self._timestamp()
        self.message_versions[message["id"]].append(message["content"])
        self.version_times[message["id"]].append(time.perf_counter())
        self._notify()

    # -- REST -----------------------------------------------------------------------------------

    def _build_routes(
        self,
        send_limit: tuple[int, float],
        edit_limit: tuple[int, float],
        webhook_limit: tuple[int, float],
    ) -> list[Route]:
        webhook = BucketRule("webhook", *webhook_limit, ("app_id", "token"))
        table: list[
            tuple[str, str, Callable[[Request], Awaitable[tuple[int, Any]]], BucketRule | None, bool]
        ] = [
            ("GET", "/users/@me", self._get_me, BucketRule("me", 5, 5.0, ()), True),
            ("POST", "/users/@me/channels", self._create_dm, BucketRule("dm", 5, 5.0, ()), True),
            ("GET", "/oauth2/applications/@me", self._get_app, BucketRule("app", 5, 5.0, ()), True),
            ("GET", "/applications/@me", self._get_app, BucketRule("app-me", 5, 5.0, ()), True),
            ("GET", "/gateway", self._get_gateway, None, True),
            ("GET", "/gateway/bot", self._get_gateway, None, True),
            (
                "GET",
                "/applications/{app_id}/commands",
                self._get_commands,
                BucketRule("cmd-get", 5, 5.0, ()),
                True,
            ),
            (
                "PUT",
                "/applications/{app_id}/commands",
                self._put_commands,
                BucketRule("cmd-put", 5, 20.0, ()),
                True,
            ),
            (
                "GET",
                "/applications/{app_id}/guilds/{guild_id}/commands",
                self._get_commands,
                BucketRule("gcmd-get", 5, 5.0, ("guild_id",)),
                True,
            ),
            (
                "PUT",
                "/applications/{app_id}/guilds/{guild_id}/commands",
                self._put_commands,
                BucketRule("gcmd-put", 5, 20.0, ("guild_id",)),
                True,
            ),
            (
                "POST",
                "/interactions/{interaction_id}/{token}/callback",
                self._callback,
                BucketRule("callback", 5, 1.0, ("interaction_id", "token")),
                False,
            ),
            ("GET", "/webhooks/{app_id}/{token}/messages/{message_id}", self._webhook_get, webhook, False),
            ("PATCH", "/webhooks/{app_id}/{token}/messages/{message_id}", self._webhook_edit, webhook, False),
            (
                "DELETE",
                "/webhooks/{app_id}/{token}/messages/{message_id}",
                self._webhook_delete,
                webhook,
                False,
            ),
            ("POST", "/webhooks/{app_id}/{token}", self._followup, webhook, False),
            (
                "GET",
                "/channels/{channel_id}",
                self._get_channel,
                BucketRule("chan", 10, 1.0, ("channel_id",)),
                True,
            ),
            (
                "GET",
                "/channels/{channel_id}/messages",
                self._list_messages,
                BucketRule("history", 50, 1.0, ("channel_id",)),
                True,
            ),
            (
                "POST",
                "/channels/{channel_id}/messages",
                self._create_message,
                BucketRule("send", *send_limit, ("channel_id",)),
                True,
            ),
            (
                "GET",
                "/channels/{channel_id}/messages/{message_id}",
                self._get_message,
                BucketRule("get-msg", 50, 1.0, ("channel_id",)),
                True,
            ),
            (
                "PATCH",
                "/channels/{channel_id}/messages/{message_id}",
                self._edit_channel_message,
                BucketRule("edit", *edit_limit, ("channel_id",)),
                True,
            ),
            (
                "POST",
                "/channels/{channel_id}/typing",
                self._typing,
                BucketRule("typing", 5, 5.0, ("channel_id",)),
                True,
            ),
        ]
        routes = []
        for method, template, handler, bucket, auth in table:
            regex = re.sub(r"\\{(\w+)\\}", r"(?P<\1>[^/]+)", re.escape(template))
            is_interaction = template.startswith(("/interactions", "/webhooks"))
            routes.append(
                Route(
                    method,
                    template,
                    re.compile(regex),
                    handler,
                    bucket,
                    auth,
                    global_limit=not is_interaction,
                )
            )
        return routes

    async def _rest(self, request: web.Request) -> web.StreamResponse:
        path = "/" + request.match_info["tail"]
        route, params = self._match(request.method, path)
        body, files = await self._read_body(request)
        record = RecordedRequest(
            method=request.method,
            path=path,
            route=f"{request.method} {route.template if route else path}",
            query=dict(request.query),
            json=body,
            files=files,
            at=time.perf_counter(),
            authorization=request.headers.get("Authorization", ""),
        )
        self.requests.append(record)
        headers = {"Via": "1.1 google"}
        try:
            if route is None:
                raise DiscordHTTPError(404, 0, "404: Not Found")
            if route.auth and record.authorization != f"Bot {self.token}":
                raise DiscordHTTPError(401, 0, "401: Unauthorized")
            limited = self._rate_limit(route, params, path, headers)
            if limited is not None:
                record.status = 429
                self.rate_limited.append(record)
                self._notify()
                return _json_response(limited, status=429, headers=headers)
            status, payload = await route.handler(Request(request.method, params, record.query, body, files))
        except DiscordHTTPError as error:
            record.status = error.status
            self._notify()
            return _json_response(error.body(), status=error.status, headers=headers)
        record.status = status
        self._notify()
        if status == 204:
            return web.Response(status=204, headers=headers)
        return _json_response(payload, status=status, headers=headers)

    def _match(self, method: str, path: str) -> tuple[Route | None, dict[str, str]]:
        for route in self._routes:
            if route.method == method and (match := route.pattern.fullmatch(path)):
                return route, match.groupdict()
        return None, {}

    async def _read_body(self, request: web.Request) -> tuple[Any, list[UploadedFile]]:
        if not request.body_exists:
            return None, []
        if request.content_type.startswith("multipart/"):
            reader = await request.multipart()
            payload: Any = None
            files: list[UploadedFile] = []
            while (part := await reader.next()) is not None:
                if not isinstance(part, BodyPartReader):
                    continue  # nested multipart: Discord does not use it
                data = bytes(await part.read(decode=False))
                if part.name == "payload_json":
                    payload = json.loads(data)
                elif part.name and part.name.startswith("files["):
                    filename = part.filename or "file"
                    files.append(UploadedFile(part.name, filename, _guess_type(filename, data), data))
            return payload, files
        raw = await request.read()
        return (json.loads(raw) if raw else None), []

    def _rate_limit(
        self, route: Route, params: Mapping[str, str], path: str, headers: dict[str, str]
    ) -> dict[str, Any] | None:
        """Fill rate-limit headers; return a 429 body when this request is over a limit."""
        for injected in self._injected:
            if injected.count > 0 and injected.method == route.method and injected.path_pattern.search(path):
                injected.count -= 1
                headers.update(
                    {
                        "Retry-After": str(math.ceil(injected.retry_after)),
                        "X-RateLimit-Scope": injected.scope,
                    }
                )
                if injected.scope == "global":
                    headers["X-RateLimit-Global"] = "true"
                return {
                    "message": "You are being rate limited.",
                    "retry_after": injected.retry_after,
                    "global": injected.scope == "global",
                }
        now = time.monotonic()
        if route.global_limit:
            allowed, _, reset_after = self._global.take(now)
            if not allowed:
                headers.update(
                    {
                        "Retry-After": str(math.ceil(reset_after)),
                        "X-RateLimit-Global": "true",
                        "X-RateLimit-Scope": "global",
                    }
                )
                return {
                    "message": "You are being rate limited.",
                    "retry_after": round(reset_after, 3),
                    "global": True,
                }
        rule = route.bucket
        if rule is None:
            return None
        key = rule.name + ":" + "+".join(params[m] for m in rule.major)
        bucket = self._buckets.setdefault(key, Bucket(rule.name, rule.limit, rule.period))
        allowed, remaining, reset_after = bucket.take(now)
        headers.update(
            {
                "X-RateLimit-Limit": str(rule.limit),
                "X-RateLimit-Remaining": str(remaining),
                "X-RateLimit-Reset": f"{time.time() + reset_after:.3f}",
                "X-RateLimit-Reset-After": f"{reset_after:.3f}",
                "X-RateLimit-Bucket": _bucket_hash(rule.name),
            }
        )
        if allowed:
            return None
        headers.update({"Retry-After": str(math.ceil(reset_after)), "X-RateLimit-Scope": "user"})
        return {
            "message": "You are being rate limited.",
            "retry_after": round(reset_after, 3),
            "global": False,
        }

    # -- REST handlers --------------------------------------------------------------------------

    async def _get_me(self, _req: Request) -> tuple[int, Any]:
        return 200, {
            **self.bot_user,
            "verified": True,
            "mfa_enabled": False,
            "email": None,
            "locale": "en-US",
        }

    @property
    def application_flags(self) -> int:
        """The application's flags: the Message Content intent as the portal has it."""
        if not self.message_content_enabled:
            return 0
        return APP_FLAG_MESSAGE_CONTENT if self.verified else APP_FLAG_MESSAGE_CONTENT_LIMITED

    async def _get_app(self, _req: Request) -> tuple[int, Any]:
        owner = self._user_payload(self.snowflake(), "app-owner")
        return 200, {
            "id": self.application_id,
            "name": self.bot_user["username"],
            "icon": None,
            "description": "",
            "summary": "",
            "type": None,
            "bot_public": True,
            "bot_require_code_grant": False,
            "verify_key": secrets.token_hex(32),
            "owner": owner,
            "flags": self.application_flags,
            "team": None,
            "bot": self.bot_user,
            "interactions_endpoint_url": None,
            "redirect_uris": [],
            "tags": [],
        }

    async def _get_gateway(self, _req: Request) -> tuple[int, Any]:
        return 200, {
            "url": f"ws://127.0.0.1:{self.port}/gateway/",
            "shards": 1,
            "session_start_limit": {
                "total": 1000,
                "remaining": 999,
                "reset_after": 86_400_000,
                "max_concurrency": 1,
            },
        }

    def _check_app(self, req: Request) -> None:
        if req.params.get("app_id") != self.application_id:
            raise DiscordHTTPError(403, 50001, "Missing Access")

    async def _get_commands(self, req: Request) -> tuple[int, Any]:
        self._check_app(req)
        return 200, self.commands.get(req.params.get("guild_id", "global"), [])

    async def _put_commands(self, req: Request) -> tuple[int, Any]:
        self._check_app(req)
        scope = req.params.get("guild_id", "global")
        if scope != "global" and scope not in self.guilds:
            raise DiscordHTTPError(403, 50001, "Missing Access")
        if not isinstance(req.json, list) or len(req.json) > 100:
            raise invalid_form("_root", "BASE_TYPE_BAD_LENGTH", "Must be between 0 and 100 in length.")
        previous = {c["name"]: c for c in self.commands.get(scope, [])}
        stored = []
        for command in req.json:
            _validate_command(command)
            old = previous.get(command["name"])
            permissions = command.get("default_member_permissions")  # "?string" in Discord's answers
            entry = {
                "id": old["id"] if old else self.snowflake(),
                "application_id": self.application_id,
                "version": self.snowflake(),
                "type": command.get("type", 1),
                "name": command["name"],
                "description": command.get("description", ""),
                "options": command.get("options", []),
                "default_member_permissions": permissions if permissions is None else str(permissions),
                "nsfw": command.get("nsfw", False),
                "name_localizations": command.get("name_localizations"),
                "description_localizations": command.get("description_localizations"),
            }
            if scope == "global":
                # Only globally-scoped commands have these; Discord leaves them out of guild commands.
                entry["dm_permission"] = command.get("dm_permission", True)
                entry["contexts"] = command.get("contexts")
                entry["integration_types"] = command.get("integration_types", [0])
            else:
                entry["guild_id"] = scope
            stored.append(entry)
        self.commands[scope] = stored
        return 200, stored

    def _interaction_for(self, req: Request) -> FakeInteraction:
        token = req.params["token"]
        interaction = next((i for i in self.interactions.values() if i.token == token), None)
        if interaction is None or (
            "interaction_id" in req.params and req.params["interaction_id"] != interaction.id
        ):
            raise DiscordHTTPError(404, 10062, "Unknown interaction")
        return interaction

    def _webhook_interaction(self, req: Request) -> FakeInteraction:
        if req.params["app_id"] != self.application_id:
            raise DiscordHTTPError(404, 10015, "Unknown Webhook")
        interaction = next((i for i in self.interactions.values() if i.token == req.params["token"]), None)
        if interaction is None or not interaction.acked:
            raise DiscordHTTPError(404, 10015, "Unknown Webhook")
        if self.now() - interaction.created_at >= TOKEN_LIFETIME_S:
            raise DiscordHTTPError(401, 50027, "Invalid Webhook Token")
        return interaction

    async def _callback(self, req: Request) -> tuple[int, Any]:
        interaction = self._interaction_for(req)
        if interaction.acked:
            raise DiscordHTTPError(400, 40060, "Interaction has already been acknowledged.")
        if self.now() - interaction.created_at > self.ack_deadline_s:
            raise DiscordHTTPError(404, 10062, "Unknown interaction")
        body = req.json or {}
        kind = body.get("type")
        data = body.get("data") or {}
        if kind not in (4, 5, 9):
            raise invalid_form(
                "type", "INTERACTION_RESPONSE_TYPE_INVALID", "Invalid interaction response type"
            )
        interaction.acked = True
        interaction.response_type = kind
        message = None
        if kind in (4, 5):
            flags = int(data.get("flags") or 0)
            interaction.ephemeral = bool(flags & FLAG_EPHEMERAL)
            if kind == 4:
                self._validate_message(data, req.files, require_content=True)
            message = self._new_message(
                interaction.channel_id,
                author_id=self.bot_user_id,
                content=data.get("content", "") if kind == 4 else "",
                embeds=data.get("embeds") or [],
                files=req.files,
                attachment_meta=data.get("attachments") or [],
                flags=(flags & FLAG_EPHEMERAL) | (FLAG_LOADING if kind == 5 else 0),
                interaction=interaction,
            )
            interaction.original_id = message["id"]
            interaction.original_edited = kind == 4
            if not interaction.ephemeral:
                self._dispatch_soon("MESSAGE_CREATE", message)
        if req.query.get("with_response") not in ("1", "true", "True"):
            return 204, None
        callback: dict[str, Any] = {
            "interaction": {
                "id": interaction.id,
                "type": 2,
                "response_message_id": interaction.original_id or None,
                "response_message_loading": kind == 5,
                "response_message_ephemeral": interaction.ephemeral,
            },
            "resource": {"type": kind},
        }
        if kind == 4 and message is not None:
            callback["resource"]["message"] = message
        return 200, callback

    def _webhook_message(self, interaction: FakeInteraction, message_id: str) -> dict[str, Any]:
        target = interaction.original_id if message_id == "@original" else message_id
        if message_id == "@original" and interaction.original_deleted:
            raise DiscordHTTPError(404, 10008, "Unknown Message")
        if target not in self.messages or (
            target != interaction.original_id and target not in interaction.followups
        ):
            raise DiscordHTTPError(404, 10008, "Unknown Message")
        return self.messages[target]

    async def _webhook_get(self, req: Request) -> tuple[int, Any]:
        interaction = self._webhook_interaction(req)
        return 200, self._webhook_message(interaction, req.params["message_id"])

    async def _webhook_edit(self, req: Request) -> tuple[int, Any]:
        interaction = self._webhook_interaction(req)
        message = self._webhook_message(interaction, req.params["message_id"])
        body = req.json or {}
        self._validate_message(body, req.files, require_content=False, existing=message)
        self._edit_message(message, body, req.files)
        if message["id"] == interaction.original_id:
            interaction.original_edited = True
        if not message["flags"] & FLAG_EPHEMERAL:
            self._dispatch_soon("MESSAGE_UPDATE", message)
        return 200, message

    async def _webhook_delete(self, req: Request) -> tuple[int, Any]:
        interaction = self._webhook_interaction(req)
        message = self._webhook_message(interaction, req.params["message_id"])
        self.channel_order[message["channel_id"]].remove(message["id"])
        del self.messages[message["id"]]
        if message["id"] == interaction.original_id:
            interaction.original_deleted = True
        if not message["flags"] & FLAG_EPHEMERAL:
            self._dispatch_soon(
                "MESSAGE_DELETE",
                {"id": message["id"], "channel_id": message["channel_id"], "guild_id": interaction.guild_id},
            )
        self._notify()
        return 204, None

    async def _followup(self, req: Request) -> tuple[int, Any]:
        interaction = self._webhook_interaction(req)
        body = req.json or {}
        self._validate_message(body, req.files, require_content=True)
        flags = int(body.get("flags") or 0)
        original = self.messages.get(interaction.original_id)
        if (
            interaction.response_type == 5
            and not interaction.original_edited
            and not interaction.original_deleted
            and original is not None
        ):
            # Deprecated but documented: the first follow-up after a defer edits the loading message,
            # which keeps the defer's ephemeral state.
            self._edit_message(original, body, req.files)
            interaction.original_edited = True
            message = original
        else:
            message = self._new_message(
                interaction.channel_id,
                author_id=self.bot_user_id,
                content=body.get("content", ""),
                embeds=body.get("embeds") or [],
                files=req.files,
                attachment_meta=body.get("attachments") or [],
                flags=flags & FLAG_EPHEMERAL,
                interaction=interaction,
            )
            interaction.followups.append(message["id"])
            if not message["flags"] & FLAG_EPHEMERAL:
                self._dispatch_soon("MESSAGE_CREATE", message)
        if req.query.get("wait") not in ("1", "true", "True"):
            return 204, None
        return 200, message

    def _channel(self, req: Request) -> dict[str, Any]:
        channel = self.channels.get(req.params["channel_id"])
        if channel is None:
            raise DiscordHTTPError(404, 10003, "Unknown Channel")
        return channel

    async def _create_dm(self, req: Request) -> tuple[int, Any]:
        """The DM channel with a user (Discord's Create DM): the existing one, or a new one."""
        recipient = str((req.json or {}).get("recipient_id") or "")
        if recipient not in self.users:
            raise DiscordHTTPError(400, 50007, "Cannot send messages to this user")
        return 200, self.channels[self.dm_channel(recipient)]

    def _bot_may(self, channel: Mapping[str, Any], needed: int = 0) -> None:
        """Discord's 403 when the bot may not do this in a guild channel: 50001 Missing Access without
        View Channel, else 50013 Missing Permissions when it lacks any of `needed`."""
        if "guild_id" not in channel:
            return  # a DM
        have = self.channel_permissions(channel["id"], self.bot_user_id)
        if not have & P_VIEW_CHANNEL:
            raise DiscordHTTPError(403, 50001, "Missing Access")
        if needed & ~have:
            raise DiscordHTTPError(403, 50013, "Missing Permissions")

    @staticmethod
    def _send_permission(channel: Mapping[str, Any]) -> int:
        return P_SEND_IN_THREADS if channel["type"] == 11 else P_SEND_MESSAGES

    async def _get_channel(self, req: Request) -> tuple[int, Any]:
        channel = self._channel(req)
        self._bot_may(channel)
        return 200, channel

    async def _list_messages(self, req: Request) -> tuple[int, Any]:
        channel = self._channel(req)
        self._bot_may(channel)
        try:
            limit = int(req.query.get("limit", "50"))
        except ValueError:
            raise invalid_form("limit", "NUMBER_TYPE_COERCE", "Value is not int.") from None
        if not 1 <= limit <= 100:
            raise invalid_form("limit", "NUMBER_TYPE_MAX", "int value should be less than or equal to 100.")
        if (
            "guild_id" in channel
            and not self.channel_permissions(channel["id"], self.bot_user_id) & P_READ_HISTORY
        ):
            return 200, []  # as documented: an empty list without Read Message History
        listed = self.channel_messages(channel["id"])
        if "before" in req.query:
            older = [m for m in listed if int(m["id"]) < int(req.query["before"])]
            page = older[-limit:]
        elif "after" in req.query:
            newer = [m for m in listed if int(m["id"]) > int(req.query["after"])]
            page = newer[:limit]
        elif "around" in req.query:
            pivot = int(req.query["around"])
            index = next((i for i, m in enumerate(listed) if int(m["id"]) >= pivot), len(listed))
            start = max(0, index - limit // 2)
            page = listed[start : start + limit]
        else:
            page = listed[-limit:]
        return 200, list(reversed(page))  # newest first, as Discord answers

    async def _get_message(self, req: Request) -> tuple[int, Any]:
        channel = self._channel(req)
        self._bot_may(channel, P_READ_HISTORY)
        message = self.messages.get(req.params["message_id"])
        if message is None or message["channel_id"] != channel["id"] or message["flags"] & FLAG_EPHEMERAL:
            raise DiscordHTTPError(404, 10008, "Unknown Message")
        return 200, message

    def _check_thread_open(self, channel: Mapping[str, Any]) -> None:
        metadata = channel.get("thread_metadata")
        if metadata and metadata.get("locked") and metadata.get("archived"):
            raise DiscordHTTPError(400, 50083, "Thread is archived")

    async def _create_message(self, req: Request) -> tuple[int, Any]:
        channel = self._channel(req)
        body = req.json or {}
        reference = body.get("message_reference")
        # A reply needs Read Message History; files need Attach Files.
        needed = self._send_permission(channel) | (P_READ_HISTORY if reference else 0)
        self._bot_may(channel, needed | (P_ATTACH_FILES if req.files else 0))
        self._check_thread_open(channel)
        self._validate_message(body, req.files, require_content=True)
        allowed = body.get("allowed_mentions") or {}
        message = self._new_message(
            channel["id"],
            author_id=self.bot_user_id,
            content=body.get("content") or "",
            embeds=body.get("embeds") or [],
            files=req.files,
            attachment_meta=body.get("attachments") or [],
            reference=reference,
            flags=int(body.get("flags") or 0) & ~FLAG_EPHEMERAL,
            mentions_replied=allowed.get("replied_user", True),
        )
        self._dispatch_soon("MESSAGE_CREATE", message)
        return 200, message

    async def _edit_channel_message(self, req: Request) -> tuple[int, Any]:
        channel = self._channel(req)
        self._bot_may(channel, P_ATTACH_FILES if req.files else 0)
        message = self.messages.get(req.params["message_id"])
        if message is None or message["channel_id"] != channel["id"]:
            raise DiscordHTTPError(404, 10008, "Unknown Message")
        if message["author"]["id"] != self.bot_user_id:
            raise DiscordHTTPError(403, 50005, "Cannot edit a message authored by another user")
        metadata = channel.get("thread_metadata")
        if metadata and metadata.get("archived"):
            raise DiscordHTTPError(400, 50083, "Thread is archived")
        body = req.json or {}
        self._validate_message(body, req.files, require_content=False, existing=message)
        self._edit_message(message, body, req.files)
        self._dispatch_soon("MESSAGE_UPDATE", message)
        return 200, message

    async def _typing(self, req: Request) -> tuple[int, Any]:
        channel = self._channel(req)
        self._bot_may(channel, self._send_permission(channel))
        self.typing.append((channel["id"], time.perf_counter()))
        self._notify()
        return 204, None

    async def _cdn(self, request: web.Request) -> web.StreamResponse:
        found = self.cdn.get(request.path)
        if found is None:
            return web.Response(status=404, text="Not Found")
        content_type, data = found
        return web.Response(body=data, content_type=content_type)

    # -- validation -----------------------------------------------------------------------------

    def _validate_message(
        self,
        body: Mapping[str, Any],
        files: Sequence[UploadedFile],
        *,
        require_content: bool,
        existing: Mapping[str, Any] | None = None,
    ) -> None:
        content = body.get("content")
        if content is not None and len(content) > MAX_CONTENT:
            raise invalid_form(
                "content", "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_CONTENT} or fewer in length."
            )
        embeds = body.get("embeds") or []
        if len(embeds) > MAX_EMBEDS:
            raise invalid_form("embeds", "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_EMBEDS} or fewer in length.")
        total = 0
        for index, embed in enumerate(embeds):
            for key, limit in (("title", 256), ("description", 4096)):
                value = embed.get(key) or ""
                total += len(value)
                if len(value) > limit:
                    raise invalid_form(
                        f"embeds.{index}.{key}",
                        "BASE_TYPE_MAX_LENGTH",
                        f"Must be {limit} or fewer in length.",
                    )
            footer = (embed.get("footer") or {}).get("text") or ""
            total += len(footer)
            for field_ in embed.get("fields") or []:
                total += len(field_.get("name", "")) + len(field_.get("value", ""))
        if total > 6000:
            raise invalid_form("embeds", "MAX_EMBED_SIZE_EXCEEDED", "Embed size exceeds maximum size of 6000")
        if len(files) > MAX_FILES:
            raise invalid_form("files", "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_FILES} or fewer in length.")
        if (
            any(len(f.data) > MAX_FILE_BYTES for f in files)
            or sum(len(f.data) for f in files) > MAX_REQUEST_BYTES
        ):
            raise DiscordHTTPError(413, 40005, "Request entity too large")
        content = (content or "").strip()
        if require_content and not (
            content or embeds or files or body.get("sticker_ids") or body.get("poll")
        ):
            raise DiscordHTTPError(400, 50006, "Cannot send an empty message")
        if existing is not None:
            after_content = content if "content" in body else existing["content"]
            after_embeds = embeds if "embeds" in body else existing["embeds"]
            keeps = body.get("attachments") if "attachments" in body else existing["attachments"]
            if not (after_content or after_embeds or keeps or files):
                raise DiscordHTTPError(400, 50006, "Cannot send an empty message")


def _validate_command(command: Mapping[str, Any]) -> None:
    name = command.get("name", "")
    if not re.fullmatch(r"[-_\w]{1,32}", name) or name != name.lower():
        raise invalid_form("name", "APPLICATION_COMMAND_INVALID_NAME", "Command name is invalid")
    if command.get("type", 1) == 1 and not 1 <= len(command.get("description", "")) <= 100:
        raise invalid_form("description", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length.")
    options: Iterable[Mapping[str, Any]] = command.get("options") or []
    if len(list(options)) > 25:
        raise invalid_form("options", "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")


def _bucket_hash(name: str) -> str:
    return hashlib.sha1(f"fake-discord:{name}".encode()).hexdigest()[:16]


def _guess_type(filename: str, data: bytes) -> str:
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"GIF8"):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return mimetypes.guess_type(filename)[0] or "application/octet-stream"


def _json_response(payload: Any, *, status: int, headers: Mapping[str, str]) -> web.Response:
    """Discord answers `Content-Type: application/json` exactly (discord.py compares it verbatim)."""
    return web.Response(
        body=json.dumps(payload).encode(),
        status=status,
        headers={**headers, "Content-Type": "application/json"},
    )
