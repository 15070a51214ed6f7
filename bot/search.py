"""Which of Grok's server-side tools a turn may use: the place's settings (an admin's `settings`)
narrowed by the question's `search` option; and those settings' values, read and checked.

Stored values (place_setting columns): `tools` "web,x,code" (any of them) or "none", unset meaning
web and X search; `search_domains` "a.com,b.org" (search only these) or "-a.com,-b.org" (never
these), "none" or unset meaning any; `x_handles` "xai,grok" (only their posts), "none" or unset
meaning anyone's.
"""

from __future__ import annotations

from bot.errors import BadInput
from bot.grok import MAX_DOMAINS, MAX_X_HANDLES, Tools, WebSearch, XSearch
from bot.store import PlaceSettings

__all__ = [
    "DEFAULT_TOOLS",
    "NONE",
    "SEARCH_CHOICES",
    "TOOL_NAMES",
    "domains_value",
    "handles_value",
    "tool_kinds",
    "tools_for",
    "tools_value",
]

SEARCH_CHOICES = ("auto", "off", "web", "x")  # ask's `search`
TOOL_NAMES = ("web", "x", "code")
DEFAULT_TOOLS = ("web", "x")  # code execution only where an admin turns it on
NONE = "none"
_SEARCHES = {"web": "Web search", "x": "X search"}


def _items(raw: str) -> list[str]:
    return [item.strip() for item in raw.replace(" ", ",").split(",") if item.strip()]


def tool_kinds(value: str | None) -> tuple[str, ...]:
    """The tools a stored `tools` value turns on, in the order web, x, code."""
    if value is None:
        return DEFAULT_TOOLS
    named = set(value.split(","))
    return tuple(kind for kind in TOOL_NAMES if kind in named)


def tools_value(raw: str) -> str:
    """An admin's `tools:` as stored: "web,x,code" (in that order) or "none"."""
    items = [item.lower() for item in _items(raw)]
    if items == [NONE]:
        return NONE
    wrong = [item for item in items if item not in TOOL_NAMES]
    if wrong or not items:
        raise BadInput(f"`tools` accepts a comma list of `web`, `x` and `code`, or `none`; not `{raw}`.")
    return ",".join(kind for kind in TOOL_NAMES if kind in items)


def domains_value(raw: str) -> str:
    """An admin's `domains:` as stored: the domains web search keeps to (`a.com,b.org`), or avoids
    (each written `-a.com`), or `none`. Checked as xAI checks them: at most MAX_DOMAINS, one kind."""
    items = _items(raw)
    if [item.lower() for item in items] == [NONE]:
        return NONE
    excluded = [item.removeprefix("-") for item in items if item.startswith("-")]
    allowed = [item for item in items if not item.startswith("-")]
    if not items or (excluded and allowed):
        raise BadInput(
            f"`domains` accepts up to {MAX_DOMAINS} web domains to search only (`a.com,b.org`), or to "
            "leave out, each written with a minus (`-a.com,-b.org`), not both; or `none`."
        )
    search = WebSearch(allowed_domains=tuple(allowed), excluded_domains=tuple(excluded))
    if search.excluded_domains:
        return ",".join(f"-{domain}" for domain in search.excluded_domains)
    return ",".join(search.allowed_domains)


def handles_value(raw: str) -> str:
    """An admin's `handles:` as stored: the X accounts whose posts X search keeps to, or `none`.
    At most MAX_X_HANDLES; written with or without the @."""
    items = _items(raw)
    if [item.lower() for item in items] == [NONE]:
        return NONE
    if not items:
        raise BadInput(f"`handles` accepts up to {MAX_X_HANDLES} X handles (`xai,grok`), or `none`.")
    return ",".join(XSearch(allowed_handles=tuple(items)).allowed_handles)


def _web(domains: str | None) -> WebSearch:
    if domains is None or domains == NONE:
        return WebSearch()
    items = domains.split(",")
    if items[0].startswith("-"):
        return WebSearch(excluded_domains=tuple(item.removeprefix("-") for item in items))
    return WebSearch(allowed_domains=tuple(items))


def _x(handles: str | None) -> XSearch:
    if handles is None or handles == NONE:
        return XSearch()
    return XSearch(allowed_handles=tuple(handles.split(",")))


def tools_for(settings: PlaceSettings, search: str = "auto") -> Tools:
    """The tools of a turn at a place with these settings. `search`: "auto" (as the place
    allows), "off" (no search; code runs as allowed), "web" or "x" (that search only, where the
    place allows it: an admin's choice is not overridden by a question)."""
    kinds = tool_kinds(settings.tools)
    if search in _SEARCHES and search not in kinds:
        raise BadInput(f"{_SEARCHES[search]} is turned off here (an admin's `settings`).")
    wanted = {"auto": ("web", "x"), "off": ()}.get(search, (search,))
    return Tools(
        web=_web(settings.search_domains) if "web" in kinds and "web" in wanted else None,
        x=_x(settings.x_handles) if "x" in kinds and "x" in wanted else None,
        code="code" in kinds,
    )
