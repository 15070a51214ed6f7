"""The interactive console on a terminal: readline at the prompt (line editing, history, bracketed
paste) in the main thread, where Ctrl-C arrives, and the engine on an event loop in a second thread.

Ctrl-C while an answer is written stops that answer; Ctrl-C at an empty prompt, or Ctrl-D, leaves.
A paste arrives whole, however long: readline reads the terminal in non-canonical mode, so the
kernel's 4,095-character line limit does not apply, and bracketed paste inserts it as one piece.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import ModuleType
from typing import Any

from adapters.console.screen import Screen
from adapters.console.session import LineReader
from bot.aio import run as run_loop

PROMPT = "you> "
HISTORY_LINES = 1000
HISTORY_ENTRY_MAX = 4096  # longer lines (pastes) are not worth recalling with the arrow keys


def history_path() -> Path:
    """Where the prompt's history is kept: XDG's default state directory under the home folder."""
    return Path.home() / ".local" / "state" / "grokbot" / "history"


def _readline() -> ModuleType | None:
    try:
        import readline
    except ImportError:  # Python built without it (Windows): plain input(), no editing
        return None
    return readline


class Prompter:
    """Reads one line at the prompt; with readline: editing, history kept in a file, bracketed paste."""

    def __init__(self, screen: Screen, *, history: Path | None) -> None:
        self._screen = screen
        self._history = history
        self._readline = _readline()
        if self._readline is not None:
            # Python turns bracketed paste off for its own REPL; a paste must arrive as one piece.
            self._readline.parse_and_bind("set enable-bracketed-paste on")
            self._readline.set_auto_history(False)
            self._readline.set_history_length(HISTORY_LINES)
            if history is not None:
                with contextlib.suppress(OSError):
                    self._readline.read_history_file(history)

    def ask(self) -> str | None:
        """The line typed; "" after Ctrl-C on a line being typed; None to leave (Ctrl-D, or Ctrl-C
        at an empty prompt)."""
        self._screen.redraw_prompt = self._redraw
        line: str | None
        try:
            line = input(PROMPT)
        except EOFError:
            line = None
        except KeyboardInterrupt:
            typed = self._readline.get_line_buffer() if self._readline is not None else ""
            line = "" if typed.strip() else None
        finally:
            self._screen.redraw_prompt = None
        if not line:
            self._screen.write("\n")  # the prompt's row was left where Ctrl-C or Ctrl-D came
            return line
        self._remember(line)
        return line

    def _redraw(self) -> None:
        """Draw the prompt and what is typed again, below what was just printed. (readline's own
        redisplay writes through C's stdio buffer, which nothing flushes while input() waits.)"""
        typed = self._readline.get_line_buffer() if self._readline is not None else ""
        print(PROMPT + typed, end="", flush=True)

    def _remember(self, line: str) -> None:
        recallable = line.strip() and "\n" not in line and len(line) <= HISTORY_ENTRY_MAX
        if self._readline is not None and recallable:
            self._readline.add_history(line)

    def save(self) -> None:
        """Keep the history for the next session; quietly nothing where the file cannot be written."""
        if self._readline is None or self._history is None:
            return
        with contextlib.suppress(OSError):
            self._history.parent.mkdir(parents=True, exist_ok=True)
            self._readline.write_history_file(self._history)


Session = Callable[[LineReader], Coroutine[Any, Any, None]]


class Terminal:
    """Runs a console session with the person at a terminal."""

    def __init__(self, prompter: Prompter, *, interrupt: Callable[[], bool]) -> None:
        self._prompter = prompter
        self._interrupt = interrupt  # stops the answer being written; False when there is none
        self._wants: queue.Queue[asyncio.Future[str | None] | None] = queue.Queue()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None

    def run(self, session: Session) -> None:
        """Until the session ends: prompt whenever it reads a line. Its errors are raised here."""
        with ThreadPoolExecutor(1, thread_name_prefix="grokbot-console") as pool:
            done = pool.submit(run_loop, self._serve(session))
            done.add_done_callback(lambda _: self._wants.put(None))
            try:
                while (want := self._next()) is not None:
                    line = self._prompter.ask()
                    assert self._loop is not None
                    self._loop.call_soon_threadsafe(_settle, want, line)
            finally:
                self._prompter.save()
            done.result()

    async def _serve(self, session: Session) -> None:
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.current_task()
        with contextlib.suppress(asyncio.CancelledError):  # Ctrl-C with nothing to stop: leave
            await session(self.read)

    async def read(self) -> str | None:
        """The next line typed at the prompt (None: leave)."""
        future: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
        self._wants.put(future)
        return await future

    def _next(self) -> asyncio.Future[str | None] | None:
        """Wait for the session to want a line; Ctrl-C meanwhile stops the answer being written."""
        while True:
            try:
                return self._wants.get()
            except KeyboardInterrupt:
                if self._loop is not None:
                    self._loop.call_soon_threadsafe(self._stop_or_leave)

    def _stop_or_leave(self) -> None:
        if not self._interrupt() and self._task is not None:
            self._task.cancel()


def _settle(want: asyncio.Future[str | None], line: str | None) -> None:
    if not want.done():
        want.set_result(line)
