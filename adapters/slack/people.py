"""Who the bot talks to: the person each thread's answers go to (native streams outside DMs need the
recipient), and people's display names (users.info, cached for an hour).
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.api import SlackApi
from bot.errors import PlatformError
from bot.platform import Author

log = logging.getLogger(__name__)

NAME_TTL_S = 3600.0
MEMORY = 10_000


class Recipients:
    """(channel, message or thread) -> (user, team) of the person being answered there."""

    def __init__(self) -> None:
        self._known: OrderedDict[tuple[str, str], tuple[str, str]] = OrderedDict()

    def remember(self, channel: str, ts: str, user: str, team: str) -> None:
        """`user` is answered at message `ts` and in the thread under it."""
        if channel and ts and user:
            self._keep((channel, ts), user, team)
            self._keep((channel, "thread:" + ts), user, team)

    def remember_thread(self, channel: str, thread: str, user: str, team: str) -> None:
        self._keep((channel, "thread:" + thread), user, team)

    def of(self, channel: str, *, reply_to: str, thread: str) -> tuple[str, str]:
        """(user, team) answered for `reply_to`, else in `thread`; ("", "") when nobody is known."""
        return self._known.get((channel, reply_to)) or self._known.get(
            (channel, "thread:" + thread), ("", "")
        )

    def _keep(self, key: tuple[str, str], user: str, team: str) -> None:
        self._known[key] = (user, team)
        self._known.move_to_end(key)
        while len(self._known) > MEMORY:
            self._known.popitem(last=False)


class People:
    """Authors as the engine sees them: display name, and whether they are workspace admins."""

    def __init__(self, api: SlackApi, client: AsyncWebClient) -> None:
        self._api = api
        self._client = client
        self._names: OrderedDict[str, tuple[float, Author]] = OrderedDict()

    async def author(self, team: str, user_id: str) -> Author:
        """Author with the display name (users.info, cached for an hour); workspace admins are admins."""
        cached = self._names.get(user_id)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        try:
            response = await self._api.call(
                "users.info", lambda: self._client.users_info(user=user_id), team=team
            )
        except PlatformError as exc:
            log.warning("users.info failed for %s: %s", user_id, exc)
            return Author(user_id, user_id)
        author = _author_of(user_id, response.get("user") or {})
        self._names[user_id] = (time.monotonic() + NAME_TTL_S, author)
        while len(self._names) > MEMORY:
            self._names.popitem(last=False)
        return author


def _author_of(user_id: str, user: dict[str, Any]) -> Author:
    profile = user.get("profile") or {}
    name = (
        profile.get("display_name") or profile.get("real_name") or user.get("real_name") or user.get("name")
    )
    return Author(
        id=user_id,
        name=str(name or user_id),
        is_admin=bool(user.get("is_admin") or user.get("is_owner")),
        is_bot=bool(user.get("is_bot")),
    )
