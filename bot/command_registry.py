"""The chat commands and their options, each defined once: the text parser, the engine's routing,
the handlers' option checks and the help all read `REGISTRY`; so do the suggestions for a mistyped
command name.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = [
    "REGISTRY",
    "TEXT_OPTION",
    "Action",
    "CommandSpec",
    "OptionSpec",
    "spec_of",
    "suggest",
    "unknown_command",
]

# Discord's name for a command's free text, accepted as an option wherever a command takes text.
TEXT_OPTION = "prompt"
# How alike (difflib's ratio) a word must be to a command name to be taken for its typo: `usgae`,
# `imagin`, `rset` and `hlep` are; `hello`, `test` and `thanks` are not.
TYPO_SIMILARITY = 0.75


@dataclass(frozen=True)
class OptionSpec:
    """One `name:value` option of a command."""

    name: str
    value: str  # how its value is written: "<name>", "low|high", "1-4"
    about: str = ""  # what it does, in a few words
    required: bool = False

    @property
    def written(self) -> str:
        return f"{self.name}:{self.value}"


@dataclass(frozen=True)
class Action:
    """A subcommand named by the first word of the text (`digest add ...`)."""

    name: str
    options: tuple[OptionSpec, ...] = ()


@dataclass(frozen=True)
class CommandSpec:
    """A chat command: its name, what it does, the free text it takes and its options."""

    name: str
    about: str
    text: str = ""  # the free text, as help writes it ("<question>"); "" when it takes none
    options: tuple[OptionSpec, ...] = ()
    actions: tuple[Action, ...] = ()  # subcommands; their options are the command's too
    # Options only: a message of just this word runs it (help: also with a command's name after
    # it), and more words make it a question.
    textless: bool = False
    note: str = ""  # one more sentence for the help

    @property
    def all_options(self) -> tuple[OptionSpec, ...]:
        """Every option the command accepts, its actions' included, each name once."""
        seen: dict[str, OptionSpec] = {o.name: o for o in self.options}
        for action in self.actions:
            for option in action.options:
                seen.setdefault(option.name, option)
        return tuple(seen.values())

    @property
    def accepted(self) -> frozenset[str]:
        """The option names it accepts (its text too, as Discord's `prompt`, when it takes text)."""
        names = {o.name for o in self.all_options}
        return frozenset(names | {TEXT_OPTION} if self.text else names)

    @property
    def usage(self) -> str:
        """How it is written, optional options in brackets: `imagine [count:1-4] <prompt>`."""
        return _written(self.name, self.options, self.text, brackets=True)

    @property
    def usages(self) -> str:
        """Every way it is written, optional options in brackets, as help and errors list them."""
        forms = self.forms() if self.actions else (self.usage,)
        return " · ".join(f"`{form}`" for form in forms)

    def forms(self) -> tuple[str, ...]:
        """How help writes it: with its required options and its text, or one form per action."""
        if self.actions:
            return tuple(
                _written(f"{self.name} {a.name}", a.options, "", brackets=True) for a in self.actions
            )
        return (_written(self.name, self.options, self.text, brackets=False),)


def _written(name: str, options: tuple[OptionSpec, ...], text: str, *, brackets: bool) -> str:
    words = [name]
    for option in options:
        if option.required:
            words.append(option.written)
        elif brackets:
            words.append(f"[{option.written}]")
    return " ".join([*words, text] if text else words)


def _option(name: str, value: str, about: str = "", *, required: bool = False) -> OptionSpec:
    return OptionSpec(name, value, about, required)


_CHANNEL = _option("channel", "<channel>")

REGISTRY: tuple[CommandSpec, ...] = (
    CommandSpec(
        "ask",
        "answers, streamed",
        text="<question>",
        options=(
            _option("model", "<name>", "a Grok model other than the bot's"),
            _option("reasoning", "low|high", "shows the model thinking"),
            _option("defer", "true|false", "the answer is posted when ready"),
            _option("search", "auto|off|web|x", "live web and X search; auto: as the place allows"),
        ),
        note="Attach a JPEG/PNG to ask about it. Answers that searched end with their sources.",
    ),
    CommandSpec(
        "imagine",
        "generates images",
        text="<prompt>",
        options=(_option("count", "1-4", "how many"),),
    ),
    CommandSpec(
        "usage",
        "your spend, tokens, images and what is left of your quota",
        options=(_option("period", "day|month"),),
        textless=True,
    ),
    CommandSpec(
        "quota",
        "admins: show or set a user's limits",
        options=(
            _option("user", "<user>", required=True),
            _option("daily_usd", "<n>", "US dollars a day, 0 = no limit"),
            _option("monthly_usd", "<n>", "US dollars a month, 0 = no limit"),
            _option("images", "<n>", "images a day, 0 = no limit"),
        ),
    ),
    CommandSpec(
        "digest",
        "scheduled channel summaries",
        actions=(
            Action("add", (_option("schedule", "<when>", required=True), _CHANNEL)),
            Action("list"),
            Action("remove", (_option("id", "<n>", required=True),)),
            Action("now", (_CHANNEL,)),
        ),
        note="`<when>`: `09:00`, `mon 09:00`, or cron `0 9 * * 1-5`.",
    ),
    CommandSpec(
        "settings",
        "admins: show or set this channel's (or the workspace's) system prompt, model and search tools",
        options=(
            _option("scope", "channel|workspace", "where the change applies"),
            _option("tools", "web,x,code|none", "which tools Grok may use"),
            _option("domains", "a.com,b.org|-a.com|none", "web domains to keep to, or (-) leave out"),
            _option("handles", "xai,grok|none", "X accounts whose posts to keep to"),
            _option("model", "<name>", "the default model"),
            _option("prompt", "<text>", "the system prompt: the rest of the line"),
        ),
        note="Without options it shows them and where each comes from; `<option>:default` unsets one.",
    ),
    CommandSpec(
        "admin",
        "admins: a private one-time sign-in link to the admin pages (spend charts, users, limits)",
        textless=True,
    ),
    CommandSpec("reset", "forget this conversation's history", textless=True),
    CommandSpec("help", "this list, or one command's options", text="[<command>]", textless=True),
)

_BY_NAME: Mapping[str, CommandSpec] = {spec.name: spec for spec in REGISTRY}


def spec_of(name: str) -> CommandSpec | None:
    """The registered command called `name`, if any."""
    return _BY_NAME.get(name)


def suggest(word: str) -> str | None:
    """The command `word` is most likely a typo of (`usgae` → `usage`), if it is close to one."""
    close = difflib.get_close_matches(word.lower(), list(_BY_NAME), n=1, cutoff=TYPO_SIMILARITY)
    return close[0] if close else None


def unknown_command(word: str) -> str:
    """What to tell someone who wrote `word` as a command name: the nearest name, then every one."""
    nearest = suggest(word)
    hint = f" Did you mean `{nearest}`?" if nearest else ""
    names = ", ".join(f"`{spec.name}`" for spec in REGISTRY)
    return f"`{word}` is not a command.{hint} The commands: {names}; `help <command>` shows its options."
