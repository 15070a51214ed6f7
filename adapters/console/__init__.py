"""The terminal platform: `grokbot console` chats with the same engine and commands, no credentials
needed but the xAI key. Plain text asks; `/name opt:value text` runs a command; images are saved.
"""

from __future__ import annotations

from adapters.console.platform import CAPABILITIES, PLACE, ConsolePlatform, ConsoleReply
from adapters.console.screen import Screen, ScreenLog
from adapters.console.session import (
    HELP_TEXT,
    QUIT,
    LineReader,
    chat,
    converse,
    run_console,
    stream_reader,
    to_incoming,
)
from adapters.console.terminal import Prompter, Terminal, history_path

__all__ = [
    "CAPABILITIES",
    "HELP_TEXT",
    "PLACE",
    "QUIT",
    "ConsolePlatform",
    "ConsoleReply",
    "LineReader",
    "Prompter",
    "Screen",
    "ScreenLog",
    "Terminal",
    "chat",
    "converse",
    "history_path",
    "run_console",
    "stream_reader",
    "to_incoming",
]
