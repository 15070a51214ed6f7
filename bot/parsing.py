"""Commands typed as text (Slack's `/grok <text>`, the console's `/<text>`) read into `Command`
values from the command registry: options, quoted values, subcommands, and the mistyped command
that is told, never sent to Grok as a paid question.
"""

from __future__ import annotations

import re

from bot.command_registry import REGISTRY, CommandSpec, spec_of, suggest, unknown_command
from bot.platform import Command

__all__ = ["parse_command_text"]


def parse_command_text(text: str) -> Command:
    """`name opt:value ... free text` → Command, for platforms without native options (Slack's
    `/grok <text>`, the console's `/<text>`). It never raises: what is wrong is carried in
    `Command.error` (with the command's accepted forms), for the engine to tell.

    How the first word decides:
    - a command's name (`usage`, `/usage`; alone it may end in `?`, `!` or `.`) runs it;
    - one of `ask`'s options (`defer:true why is the sky blue`) makes the text `ask` with them;
    - a mistyped command is refused with the list of commands and the nearest name, never sent
      to Grok: a word written with a slash (`/usgae`), or a word close to a command's name
      (`usgae`, `imagin`) that stands alone or is followed by an option (`usgae period:month`);
    - anything else is a question: the whole text is asked (`why is the sky blue`, `hello`).
    The option-only commands followed by words are questions too (`help me write a poem`,
    `usage of semicolons`), except `help <command>`, which shows that command's options.

    Options are read only before the free text begins (after a subcommand's word: `digest add
    schedule:09:00`), so `ask what is 2:30 in seconds` keeps its colon. A value with spaces is
    quoted: `schedule:"mon 09:00"`, `user:'@ana'` (also with typographic quotes).
    """
    text = text.strip()
    first, rest = _split_first(text)
    if not first:
        return Command(name="help")
    name = first.lower().lstrip("/")
    spec = spec_of(name if rest else name.rstrip("?!."))
    bare = text.lstrip("/")
    if spec is not None:
        return _parse_command(spec, rest, question=bare)
    if _starts_with_ask_option(bare):
        return _parse_command(_ASK, bare, question=bare)
    if _SLASHED.fullmatch(first) or (suggest(name) and (not rest or _OPTION_KEY.match(rest))):
        return Command(name="help", error=unknown_command(name))
    return Command(name="ask", text=text)


_ASK = next(spec for spec in REGISTRY if spec.name == "ask")
_OPTION_KEY = re.compile(r"([A-Za-z_]\w*):(?=\S)")  # `name:` followed by its value
_SLASHED = re.compile(r"/[\w-]+[?!.]?")  # `/usgae`: a command was meant, whatever its name
_QUOTES = {'"': '"', "'": "'", "\u201c": "\u201d", "\u2018": "\u2019"}


def _split_first(text: str) -> tuple[str, str]:
    """The first word and the rest, its own spacing and line breaks kept."""
    parts = text.split(maxsplit=1)
    return (parts[0], parts[1].strip()) if len(parts) == 2 else (text, "")


def _starts_with_ask_option(text: str) -> bool:
    key = _OPTION_KEY.match(text)
    return key is not None and key.group(1).lower() in {option.name for option in _ASK.options}


def _parse_command(spec: CommandSpec, rest: str, *, question: str) -> Command:
    """The options and text of `spec` (its subcommand first, when it has them) from `rest`."""
    action, rest = _action(spec, rest)
    options, rest, error = _read_options(rest)
    if error:
        return Command(name=spec.name, error=f"{error} Usage: {spec.usages}.")
    if spec.textless and rest:
        return _with_words(spec, rest, question=question)
    return Command(name=spec.name, options=options, text=" ".join(filter(None, (action, rest))))


def _action(spec: CommandSpec, rest: str) -> tuple[str, str]:
    """A subcommand's word (`digest add ...`) and the text after it; ("", rest) when none."""
    word, after = _split_first(rest)
    if word.lower() in {action.name for action in spec.actions}:
        return word.lower(), after
    return "", rest


def _with_words(spec: CommandSpec, words: str, *, question: str) -> Command:
    """An option-only command followed by words: a question, except `help <command>`."""
    target = words.lower().lstrip("/").rstrip("?!.")
    if spec.name == "help" and " " not in target:
        if spec_of(target) is not None:
            return Command(name="help", text=target)
        if suggest(target):
            return Command(name="help", error=unknown_command(target))
    return Command(name="ask", text=question)


def _read_options(text: str) -> tuple[dict[str, str], str, str]:
    """The leading `name:value` options of `text`, the text after them, and what is wrong with them
    ("" when nothing is)."""
    options: dict[str, str] = {}
    while (option := _leading_option(text)) is not None:
        key, value, text = option
        if value is None:
            return options, text, f"The value of `{key}` opens a quote that is not closed."
        if key in options:
            return options, text, f"The option `{key}` is given twice."
        options[key] = value
    return options, text, ""


def _leading_option(text: str) -> tuple[str, str | None, str] | None:
    """(name, value, the rest) when `text` starts with an option, the value None when its quote is
    never closed; None when `text` starts with free text (a URL's `https://` included)."""
    match = _OPTION_KEY.match(text)
    if match is None:
        return None
    key, after = match.group(1).lower(), text[match.end() :]
    close = _QUOTES.get(after[0])
    if close is not None:
        end = after.find(close, 1)
        if end < 0:
            return key, None, after
        return key, after[1:end], after[end + 1 :].strip()
    value, rest = _split_first(after)
    return None if "//" in value else (key, value, rest)
