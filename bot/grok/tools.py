"""xAI's server-side tools as a request turns them on (web search, X search, code execution), checked
against xAI's limits before anything is sent, and their JSON for `/v1/responses`.

The limits and what not to send: shared/reference/xai-agent-tools.md §1.1 and §7.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from bot.errors import BadInput

MAX_DOMAINS = 5  # allowed_domains or excluded_domains (docs, SPEC, proto)
# allowed_x_handles: the newest docs (≈Oct 2026) say 20; older docs and the OpenAPI said 10.
MAX_X_HANDLES = 20
_HANDLE = re.compile(r"[A-Za-z0-9_]{1,15}")
_DOMAIN = re.compile(r"[a-z0-9-]+(\.[a-z0-9-]+)+")


def _domains(values: tuple[str, ...], what: str) -> tuple[str, ...]:
    domains: list[str] = []
    for value in values:
        domain = value.strip().lower().removeprefix("https://").removeprefix("http://").rstrip("/")
        if not _DOMAIN.fullmatch(domain):
            raise BadInput(f"{value!r} is not a web domain (write it like example.com).")
        if domain not in domains:
            domains.append(domain)
    if len(domains) > MAX_DOMAINS:
        raise BadInput(f"Web search takes at most {MAX_DOMAINS} {what} domains ({len(domains)} given).")
    return tuple(domains)


def _handles(values: tuple[str, ...]) -> tuple[str, ...]:
    handles: list[str] = []
    for value in values:
        handle = value.strip().removeprefix("@")
        if not _HANDLE.fullmatch(handle):
            raise BadInput(f"{value!r} is not an X handle (1 to 15 letters, digits or _).")
        if handle.lower() not in (h.lower() for h in handles):
            handles.append(handle)
    if len(handles) > MAX_X_HANDLES:
        raise BadInput(f"X search takes at most {MAX_X_HANDLES} handles ({len(handles)} given).")
    return tuple(handles)


@dataclass(frozen=True, slots=True)
class WebSearch:
    """Web search, optionally limited to some domains or excluding some (not both, at most 5)."""

    allowed_domains: tuple[str, ...] = ()
    excluded_domains: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.allowed_domains and self.excluded_domains:
            raise BadInput("Web search takes allowed domains or excluded domains, not both.")
        object.__setattr__(self, "allowed_domains", _domains(self.allowed_domains, "allowed"))
        object.__setattr__(self, "excluded_domains", _domains(self.excluded_domains, "excluded"))


@dataclass(frozen=True, slots=True)
class XSearch:
    """X search, optionally limited to posts from some handles (written without `@`)."""

    allowed_handles: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "allowed_handles", _handles(self.allowed_handles))


@dataclass(frozen=True, slots=True)
class Tools:
    """Which server-side tools a response may use; none by default."""

    web: WebSearch | None = None
    x: XSearch | None = None
    code: bool = False

    def __bool__(self) -> bool:
        return self.web is not None or self.x is not None or self.code

    @property
    def kinds(self) -> tuple[str, ...]:
        """The kinds turned on: "web", "x", "code" (the ToolCall kinds)."""
        on = (("web", self.web is not None), ("x", self.x is not None), ("code", self.code))
        return tuple(kind for kind, enabled in on if enabled)


NO_TOOLS = Tools()


def tools_json(tools: Tools, *, images: bool) -> list[dict[str, Any]]:
    """The `tools` of a /v1/responses body. `images`: the turn has images, so the searches may
    look at images too. Never sent: search_context_size, user_location, external_web_access,
    a code container (rejected when set) or any tool_choice (a built-in tool cannot be forced)."""
    out: list[dict[str, Any]] = []
    if tools.web is not None:
        web: dict[str, Any] = {"type": "web_search"}
        if tools.web.allowed_domains:
            web["allowed_domains"] = list(tools.web.allowed_domains)
        if tools.web.excluded_domains:
            web["excluded_domains"] = list(tools.web.excluded_domains)
        if images:
            web["enable_image_understanding"] = True
        out.append(web)
    if tools.x is not None:
        x: dict[str, Any] = {"type": "x_search"}
        if tools.x.allowed_handles:
            x["allowed_x_handles"] = list(tools.x.allowed_handles)
        if images:
            x["enable_image_understanding"] = True
        out.append(x)
    if tools.code:
        out.append({"type": "code_interpreter"})
    return out


def includes(tools: Tools) -> list[str]:
    """The `include` values that make xAI return what a person should see of the tools' work."""
    wanted = []
    if tools.web is not None:
        wanted.append("web_search_call.action.sources")
    if tools.code:
        wanted.append("code_interpreter_call.outputs")
    return wanted
