"""The URLs Slack hands out beside the Web API: files' url_private (read with the bot token), upload
URLs (an upload's bytes), and slash commands' response_urls (`Relay`); over one aiohttp session that
is open while the adapter runs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, NoReturn
from urllib.parse import urlsplit

import aiohttp
from pydantic import SecretStr

from bot.errors import PlatformError
from bot.platform import Attachment, Image

MAX_DOWNLOAD = 50 * 1024 * 1024
SLACK_FILE_HOSTS = (".slack.com", ".slack-edge.com", ".slack-files.com")
RESPONSE_URL_TTL_S = 29 * 60.0  # Slack accepts up to 5 responses within 30 minutes


class NotConnected(PlatformError):
    """The adapter's HTTP session is closed: it has not started yet, or it has stopped."""

    def __init__(self) -> None:
        super().__init__(
            "the Slack adapter is not started",
            user_text="I am not connected to Slack right now; please try again in a moment.",
        )


class SlackUrls:
    def __init__(self, *, token: SecretStr, api_url: str) -> None:
        self.http: aiohttp.ClientSession | None = None  # set by the adapter while it runs
        self._token = token
        self._api_host = urlsplit(api_url).hostname or ""

    def session(self) -> aiohttp.ClientSession:
        """The open session; NotConnected before the adapter starts and after it stops."""
        if self.http is None:
            raise NotConnected()
        return self.http

    async def download(self, attachment: Attachment) -> bytes:
        """A user's file from its url_private, with the bot token (only ever sent to Slack's hosts)."""
        name = attachment.filename
        if not attachment.url:
            _refuse(
                f"I cannot open {name}: Slack no longer shows it (it was deleted, or the "
                "workspace's plan hides older files)"
            )
        host = urlsplit(attachment.url).hostname or ""
        if not (host == self._api_host or host.endswith(SLACK_FILE_HOSTS)):
            _refuse(f"{name} is not a Slack file")  # the token stays with Slack
        headers = {"Authorization": f"Bearer {self._token.get_secret_value()}"}
        try:
            async with self.session().get(attachment.url, headers=headers) as response:
                kind = response.headers.get("Content-Type", "")
                if response.status != 200 or kind.startswith("text/html"):
                    # Slack answers a sign-in page when the token may not read the file.
                    _refuse(f"I have no access to {name} (is files:read granted?)")
                return await _read_at_most(response, MAX_DOWNLOAD, name)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise PlatformError(
                f"downloading {name} failed: {type(exc).__name__}",
                user_text=f"I could not download {name}; please try again.",
            ) from None

    async def upload(self, url: str, image: Image) -> None:
        """An upload's bytes to the upload_url Slack gave for it (the body is the file itself)."""
        name = image.filename
        try:
            async with self.session().post(url, data=image.data) as response:
                if response.status != 200:
                    raise PlatformError(
                        f"Slack did not take the upload of {name} (HTTP {response.status})",
                        user_text=f"Slack did not take the upload of {name}; please try again.",
                    )
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise PlatformError(
                f"uploading {name} failed: {type(exc).__name__}",
                user_text=f"Uploading {name} to Slack failed; please try again.",
            ) from None

    async def respond(self, url: str, payload: dict[str, Any]) -> bool:
        """POST `payload` to a slash command's response_url; whether Slack took it."""
        if self.http is None or not url:
            return False
        try:
            async with self.http.post(url, json=payload) as response:
                return response.status == 200
        except aiohttp.ClientError:
            return False


@dataclass(frozen=True)
class Relay:
    """A /grok command's response_url: it needs no channel membership, so the command's answer and
    notices can go there where the bot cannot post (a DM between two people, a group DM)."""

    urls: SlackUrls
    url: str
    expires_at: float  # time.monotonic(): Slack takes responses for 30 minutes

    @classmethod
    def of_command(cls, urls: SlackUrls, url: str) -> Relay | None:
        return cls(urls, url, time.monotonic() + RESPONSE_URL_TTL_S) if url else None

    async def send(self, payload: dict[str, Any]) -> bool:
        """Whether Slack took `payload` (five posts at most per command, Slack's limit)."""
        return time.monotonic() < self.expires_at and await self.urls.respond(self.url, payload)

    async def ephemeral(self, text: str) -> bool:
        """`text` (mrkdwn) shown only to the person who ran the command."""
        return await self.send({"response_type": "ephemeral", "text": text})


def _refuse(text: str) -> NoReturn:
    """A file the person attached cannot be read: `text` says why, to them and to the log."""
    raise PlatformError(text, user_text=text)


async def _read_at_most(response: aiohttp.ClientResponse, limit: int, name: str) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(1 << 16):
        size += len(chunk)
        if size > limit:
            _refuse(f"{name} is too large")
        chunks.append(chunk)
    return b"".join(chunks)
