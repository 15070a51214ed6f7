"""The console's one writer: answers, notes and log lines go through it, so that the transient
status row is cleared first (and never wraps), and a prompt being typed at is drawn again after.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from typing import TextIO

from rich.cells import cell_len, set_cell_size

CLEAR_ROW = "\r\x1b[K"
DIM, RESET = "\x1b[2m", "\x1b[0m"
DEFAULT_WIDTH = 80


class Screen:
    """A text stream, and on a terminal its status row and prompt. Safe to call from any thread."""

    def __init__(self, out: TextIO, *, tty: bool | None = None) -> None:
        self._out = out
        self.tty = out.isatty() if tty is None else tty
        self._lock = threading.RLock()
        self._status = ""  # shown on the last row while nonempty (a terminal only)
        # Set while a person types at a prompt: what is printed then must not break their line.
        self.redraw_prompt: Callable[[], None] | None = None

    @property
    def width(self) -> int:
        try:
            return os.get_terminal_size(self._out.fileno()).columns or DEFAULT_WIDTH
        except (OSError, ValueError, AttributeError):  # not a terminal, or a stream without a file
            return DEFAULT_WIDTH

    def _raw(self, text: str) -> None:
        self._out.write(text)
        self._out.flush()

    def write(self, text: str) -> None:
        """Write `text` after clearing the status row; at a prompt, on a row of its own."""
        with self._lock:
            self._clear_status()
            redraw = self.redraw_prompt
            if redraw is not None and self.tty:
                self._raw(CLEAR_ROW + text + ("" if text.endswith("\n") else "\n"))
                redraw()
            else:
                self._raw(text)

    def note(self, line: str) -> None:
        """A line beside the conversation (a log record): the status, if any, is shown again after."""
        with self._lock:
            status = self._status
            self.write(line.rstrip("\n") + "\n")
            if status:
                self.status(status)

    def status(self, text: str) -> None:
        """Show a transient one-row status: on a terminal cut to its width (a wrapped status could
        not be cleared by returning to the row's start); elsewhere as a bracketed line."""
        line = " ".join(text.split("\n"))
        with self._lock:
            if not self.tty:
                self._raw(f"[{line}]\n")
                return
            room = self.width - 1
            if cell_len(line) > room:
                line = set_cell_size(line, room - 1) + "…"
            self._status = line
            self._raw(f"{CLEAR_ROW}{DIM}{line}{RESET}")

    def clear_status(self) -> None:
        with self._lock:
            self._clear_status()

    def _clear_status(self) -> None:
        if self._status:
            self._raw(CLEAR_ROW)
            self._status = ""


class ScreenLog(logging.Handler):
    """Log records as notes on the screen, so that a warning never breaks the status row."""

    def __init__(self, screen: Screen, *, level: int = logging.WARNING) -> None:
        super().__init__(level)
        self._screen = screen

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._screen.note(self.format(record))
        except (OSError, ValueError, TypeError):  # logging must not raise into the code that logged
            self.handleError(record)
