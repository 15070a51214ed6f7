"""The terminal platform: `grokbot console` chats with the same engine and commands, no credentials
needed but the xAI key. Plain text asks; `/name opt:value text` runs a command; images are saved.
"""

from __future__ import annotations

from adapters.console.platform import ConsolePlatform
from adapters.console.screen import Screen, ScreenLog
from adapters.console.session import LineReader, chat, stream_reader
from adapters.console.terminal import Prompter, Terminal, history_path

__all__ = [
    "ConsolePlatform",
    "LineReader",
    "Prompter",
    "Screen",
    "ScreenLog",
    "Terminal",
    "chat",
    "history_path",
    "stream_reader",
]
