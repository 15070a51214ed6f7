"""The `settings` command's values: an admin's options read and checked into a change of a
channel's or a workspace's settings, and the text that shows a place's settings, saying which
come from the channel, the workspace or the defaults.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from bot.errors import BadInput
from bot.grok import PriceBook
from bot.search import NONE, domains_value, handles_value, tool_kinds, tools_value
from bot.store import SettingLayers

__all__ = ["MAX_PROMPT_CHARS", "RESET", "Defaults", "SettingsChange", "describe_settings", "settings_change"]

SCOPES = ("channel", "workspace")
RESET = "default"  # `<option>:default` unsets it here, so the workspace's or the bot's applies
MAX_PROMPT_CHARS = 4_000
SHOWN_PROMPT_CHARS = 200
_MODEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")
# Option name: (the place_setting field, how a person reads it).
OPTIONS: dict[str, tuple[str, str]] = {
    "prompt": ("system_prompt", "system prompt"),
    "model": ("model", "model"),
    "tools": ("tools", "tools"),
    "domains": ("search_domains", "web domains"),
    "handles": ("x_handles", "X handles"),
}
HOW = (
    "Change with `settings [scope:channel|workspace] tools:web,x,code|none "
    "domains:a.com,b.org|-a.com|none handles:xai|none model:<name> prompt:<text>` "
    "(`prompt:` takes the rest of the line); `<option>:default` unsets one at that scope."
)


@dataclass(frozen=True)
class SettingsChange:
    """What an admin asked to change: fields to set (None: unset) at the channel or workspace."""

    whole_workspace: bool = False
    changes: dict[str, str | None] = field(default_factory=dict)


def _model_value(raw: str, prices: PriceBook) -> str:
    name = raw.strip()
    if not _MODEL.fullmatch(name) or prices.resolves(name) is None:
        raise BadInput(f"`model` accepts a Grok model name such as grok-4.3 that xAI lists; not `{raw}`.")
    return name


def _prompt_value(text: str) -> str:
    if len(text) > MAX_PROMPT_CHARS:
        raise BadInput(
            f"The system prompt takes at most {MAX_PROMPT_CHARS:,} characters ({len(text):,} given)."
        )
    return text


def _value(option: str, raw: str, prices: PriceBook) -> str:
    if option == "prompt":
        return _prompt_value(raw)
    if option == "model":
        return _model_value(raw, prices)
    checks = {"tools": tools_value, "domains": domains_value, "handles": handles_value}
    return checks[option](raw)


def settings_change(options: Mapping[str, str], prompt: str, prices: PriceBook) -> SettingsChange:
    """The change an admin's options ask for. `prompt` is the system prompt written (the `prompt`
    option with the rest of the line); `options` the others."""
    scope = options.get("scope", "channel").strip().lower()
    if scope not in SCOPES:
        raise BadInput("`scope` accepts `channel` (the default) or `workspace`.")
    given = {name: options[name] for name in OPTIONS if name in options and name != "prompt"}
    if prompt.strip():
        given["prompt"] = prompt.strip()
    elif "prompt" in options:
        raise BadInput("Write the system prompt after `prompt:`, or `prompt:default` to unset it.")
    changes = {
        OPTIONS[name][0]: None if raw.strip().lower() == RESET else _value(name, raw, prices)
        for name, raw in given.items()
    }
    return SettingsChange(whole_workspace=scope == "workspace", changes=changes)


@dataclass(frozen=True)
class Defaults:
    """What applies where nothing is set: the bot's model and system prompt."""

    model: str
    system_prompt: str


def _shown(name: str, value: str | None) -> str:
    if name == "system_prompt":
        assert value is not None
        text = " ".join(value.split())
        cut = text if len(text) <= SHOWN_PROMPT_CHARS else text[: SHOWN_PROMPT_CHARS - 1] + "…"
        return f"“{cut}”"
    if name == "tools":
        kinds = tool_kinds(value)
        return ", ".join(kinds) if kinds else "none (no search, no code)"
    if name == "search_domains":
        if value is None or value == NONE:
            return "any"
        if value.startswith("-"):
            return "any but " + ", ".join(d.removeprefix("-") for d in value.split(","))
        return "only " + ", ".join(value.split(","))
    if name == "x_handles":
        return "anyone's posts" if value is None or value == NONE else "only @" + ", @".join(value.split(","))
    return str(value)


def _line(name: str, label: str, layers: SettingLayers, defaults: Defaults) -> str:
    for scope in ("channel", "workspace"):
        value = getattr(getattr(layers, scope), name)
        if value is not None:
            return f"• {label}: {_shown(name, value)} — set for this {scope}"
    default = {"system_prompt": defaults.system_prompt, "model": defaults.model}.get(name)
    shown = _shown(name, default if name in ("system_prompt", "model") else None)
    return f"• {label}: {shown} — the default"


def describe_settings(
    layers: SettingLayers, defaults: Defaults, *, saved: SettingsChange | None = None
) -> str:
    """A place's settings, each with where it comes from; what was just saved first."""
    lines = []
    if saved is not None and saved.changes:
        scope = "the whole workspace" if saved.whole_workspace else "this channel"
        names = ", ".join(label for _, (name, label) in OPTIONS.items() if name in saved.changes)
        lines.append(f"✅ Saved for {scope}: {names}.")
    lines.append("**Grok's settings here**")
    lines += [_line(name, label, layers, defaults) for name, label in OPTIONS.values()]
    lines.append(HOW)
    return "\n".join(lines)
