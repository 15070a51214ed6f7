"""Grok's tool calls as people see them: each call an `Activity` with a title ("🔎 Searching X for
“…”"), the activities of one answer and the status line they make, and an answer's sources as
links (X posts as their x.com links).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import urlsplit

from bot.grok import Source, ToolCall
from bot.platform import Activity, SourceLink

__all__ = ["Activities", "activity_of", "links_of", "short_url"]

QUERY_CHARS = 80  # of a query in a title
_STATUS = {"in_progress": "in_progress", "completed": "complete"}  # anything else ended badly
_TWITTER = re.compile(r"^https?://(?:www\.|mobile\.)?(?:twitter|x)\.com/", re.IGNORECASE)
_X_POST = re.compile(r"^https://x\.com/([A-Za-z0-9_]{1,15})/status/\d+")


def _quoted(query: str) -> str:
    query = " ".join(query.split())
    if len(query) > QUERY_CHARS:
        query = query[: QUERY_CHARS - 1].rstrip() + "…"
    return f"“{query}”"


# What a call does, by how far it got: (while it runs, once it is done); {} is what it looks for.
_WORDS = {
    "code": ("🧮 Running code", "🧮 Ran code"),
    "page": ("🌐 Reading {}", "🌐 Read {}"),
    "thread": ("🧵 Reading a thread on X", "🧵 Read a thread on X"),
    "video": ("🎞️ Watching a video on X", "🎞️ Watched a video on X"),
    "people": ("🔎 Looking up {} on X", "🔎 Looked up {} on X"),
    "x": ("🔎 Searching X{}", "🔎 Searched X{}"),
    "web": ("🔎 Searching the web{}", "🔎 Searched the web{}"),
}
_X_NAMES = {"x_thread_fetch": "thread", "view_x_video": "video", "x_user_search": "people"}


def _doing(call: ToolCall) -> tuple[str, str]:
    """Which of _WORDS a call is, and what fills its blank (xAI names a web search's query only
    once it is done)."""
    query = call.query
    if call.kind == "code":
        return "code", ""
    if query.startswith(("http://", "https://")) or call.name == "browse_page":
        return "page", short_url(query) if query else "a page"
    kind = _X_NAMES.get(call.name, "x") if call.kind == "x" else "web"
    if kind == "people":
        return kind, _quoted(query) if query else "people"
    return kind, f" for {_quoted(query)}" if query else ""


def _title(call: ToolCall, status: str) -> str:
    """What a person reads: "🔎 Searching X for “…”" while it runs, "🔎 Searched X for “…”" after."""
    kind, blank = _doing(call)
    return _WORDS[kind][status == "complete"].format(blank)


def activity_of(call: ToolCall) -> Activity:
    """A tool call as an Activity (the same id for every event of the call)."""
    status = _STATUS.get(call.status, "error")
    sources = tuple(SourceLink(x_link(url)) for url in call.sources) if status == "complete" else ()
    return Activity(call.id, call.kind, _title(call, status), status, sources, detail=call.code)


class Activities:
    """The activities of one answer, in the order they began."""

    def __init__(self) -> None:
        self._by_id: dict[str, Activity] = {}

    def update(self, activity: Activity) -> None:
        self._by_id[activity.id] = activity

    def current(self) -> Activity | None:
        """The latest activity still in progress, if any."""
        running = [a for a in self._by_id.values() if a.status == "in_progress"]
        return running[-1] if running else None


def x_link(url: str) -> str:
    """An X (or Twitter) URL as its https://x.com/ link; other URLs as they are."""
    return _TWITTER.sub("https://x.com/", url, count=1)


def links_of(sources: Iterable[Source]) -> tuple[SourceLink, ...]:
    """An answer's sources as links, without duplicates (X posts once, whatever their host)."""
    links: dict[str, SourceLink] = {}
    for source in sources:
        url = x_link(source.url)
        links.setdefault(url.rstrip("/"), SourceLink(url, source.title or ""))
    return tuple(links.values())


def short_url(url: str, *, most: int = 60) -> str:
    """A link's label when its title is unknown: "@user on X" for an X post, else host and path."""
    post = _X_POST.match(url)
    if post is not None:
        return f"@{post.group(1)} on X"
    parts = urlsplit(url)
    host = parts.netloc.removeprefix("www.")
    label = (host + parts.path).rstrip("/") or url
    return label if len(label) <= most else label[: most - 1] + "…"
