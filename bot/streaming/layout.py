"""Where an answer's text may be cut and what each of its messages shows: pure values, no time,
no I/O. Cuts fall at a paragraph, line or word end, never inside a Markdown link; a code block cut
is closed and reopened, with its language, in the next message.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})(.*)$")
# A Markdown link or citation, `[text](url)`, with one level of brackets in its text (`[[1]](url)`).
LINK = re.compile(r"\[(?:[^\[\]\n]|\[[^\[\]\n]*\])*\]\([^()\s]*\)")
# The start of such a link, still being written, at the end of the text so far.
LINK_SO_FAR = re.compile(r"\[(?:[^\[\]\n]|\[[^\[\]\n]*\])*(?:\[[^\[\]\n]*)?(?:\](?:\([^()\s]*)?)?\Z")
SEPARATORS = ("\n\n", "\n", " ")  # the preferred ends of a part, best first


@dataclass(frozen=True)
class Fence:
    marker: str  # ``` or ~~~ (possibly longer)
    info: str  # the language tag

    @property
    def reopening(self) -> str:
        """The line that opens this block again at the top of the next message."""
        return f"{self.marker}{self.info}\n"


def open_fence(text: str) -> Fence | None:
    """The code fence still open at the end of `text`, if any."""
    current: Fence | None = None
    for line in text.split("\n"):
        match = FENCE.match(line)
        if not match:
            continue
        marker, info = match.group(1), match.group(2).strip()
        if current is None:
            current = Fence(marker, info)
        elif marker[0] == current.marker[0] and len(marker) >= len(current.marker) and not info:
            current = None
    return current


def settled(text: str) -> int:
    """How much of a streamed text may be shown now: all of it, except a Markdown link (such as a
    citation marker `[[1]](url)`) still being written at its end, which waits until it is whole."""
    line = text.rfind("\n") + 1  # a link spans no line end
    at = text.find("[", line)
    while at >= 0:
        if LINK_SO_FAR.match(text, at):
            return at
        at = text.find("[", at + 1)
    return len(text)


def cut_point(text: str, limit: int) -> int:
    """Where to cut `text` so the first part is at most `limit` long: a paragraph, line or word end
    (or else just before a link that crosses `limit`) outside every Markdown link; failing that,
    outside every complete link (a stray "[" reads as a link still being written); then anywhere;
    else at `limit`."""
    window = text[:limit]
    floor = limit // 3  # a cut keeps at least a third of the window
    complete, growing = _links(text, limit) if "[" in window else ([], None)
    avoiding: list[list[tuple[int, int]]] = [[]]  # what a cut stays out of, the most first
    if complete:
        avoiding.insert(0, complete)
    if growing is not None:
        avoiding.insert(0, [*complete, growing])
    for links in avoiding:
        cut = _last_end(window, floor, links)
        if cut is not None:
            return cut
    return limit


def _last_end(window: str, floor: int, links: Sequence[tuple[int, int]]) -> int | None:
    """The last paragraph, line or word end (in that order of preference) past `floor` and outside
    `links`; else the start of a link that crosses the window's end, if past `floor`."""
    for separator in SEPARATORS:
        at = window.rfind(separator)
        while at > floor:
            cut = at + len(separator)
            inside = next((start for start, end in links if start < cut < end), None)
            if inside is None:
                return cut
            at = window.rfind(separator, 0, inside)
    limit = len(window)
    crossing = next((start for start, end in links if start < limit < end), None)
    return crossing if crossing is not None and crossing > floor else None


def _links(text: str, limit: int) -> tuple[list[tuple[int, int]], tuple[int, int] | None]:
    """The spans of the complete links that start before `limit`, and of a link still being
    written at the end of `text` (a streamed answer's so far), which spans to its end."""
    complete: list[tuple[int, int]] = []
    growing: tuple[int, int] | None = None
    at = text.find("[", 0, limit)
    while at >= 0:
        match = LINK.match(text, at)
        if match is not None:
            complete.append(match.span())
            at = match.end()
        else:
            if growing is None and LINK_SO_FAR.match(text, at):
                growing = (at, len(text))
            at += 1
        at = text.find("[", at, limit)
    return complete, growing


@dataclass(frozen=True)
class Page:
    """The message being written: where it starts in the full text, the code fence reopened at its
    top, and the body it last showed ("" until it shows one)."""

    start: int = 0
    carry: str = ""
    shown: str = ""

    def body(self, full: str) -> str:
        """What this message shows of `full` when all of it fits."""
        return self.carry + full[self.start :]

    def fits(self, full: str, limit: int) -> bool:
        return len(self.carry) + len(full) - self.start <= limit

    @property
    def visible(self) -> int:
        """How many characters of the full text the chat shows up to the end of this message."""
        return self.start + max(0, len(self.shown) - len(self.carry))

    def seal(self, full: str, limit: int) -> Part:
        """The first `limit` characters' worth of this message, closed, and the page after it.

        A code block cut by the split is closed at the end of this part and reopened, with its
        language, at the top of the next one."""
        rest = full[self.start :]
        body_limit = limit - len(self.carry)
        cut = cut_point(rest, body_limit)
        fence = open_fence(self.carry + rest[:cut])
        if fence is not None:
            cut = cut_point(rest, body_limit - len(fence.marker) - 1)
            fence = open_fence(self.carry + rest[:cut])
        head = self.carry + rest[:cut]
        if fence is None:
            return Part(head, Page(self.start + cut))
        return Part(f"{head.rstrip(chr(10))}\n{fence.marker}", Page(self.start + cut, fence.reopening))

    def left(self) -> Page:
        """The page that follows when this message is left as it was last shown."""
        used = len(self.shown) - len(self.carry) if self.shown.startswith(self.carry) else 0
        if used <= 0:
            return Page(self.start, self.carry)
        fence = open_fence(self.shown)
        return Page(self.start + used, fence.reopening if fence is not None else "")


@dataclass(frozen=True)
class Part:
    """A finished message's body, and the page that continues the text after it."""

    body: str
    next: Page


def split_message(text: str, limit: int) -> list[str]:
    """Split an answer into parts of at most `limit` characters, never breaking a code block."""
    if limit < 40:
        raise ValueError("limit too small to split sensibly")
    parts: list[str] = []
    page = Page()
    while not page.fits(text, limit):
        part = page.seal(text, limit)
        parts.append(part.body)
        page = part.next
    parts.append(page.body(text))
    return parts


class Layout:
    """One streamed answer laid out into messages of at most `limit` characters: the text so far (a
    prefix, then the deltas) and the message being written. The writer asks it what to show and
    tells it what the chat took; it decides nothing about time."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.page = Page()
        self._prefix = ""  # shown before the streamed text (e.g. "Thought for 3 s")
        self._suffix = ""  # shown after it, once it is complete (code runs, sources)
        self._pieces: list[str] = []  # deltas not yet joined: appending is the hot path
        self._text = ""

    def append(self, delta: str) -> None:
        self._pieces.append(delta)

    def set_prefix(self, prefix: str) -> None:
        """Text shown before the answer; only settable before the first delta."""
        if not self.text:
            self._prefix = prefix

    def set_suffix(self, suffix: str) -> None:
        """Text shown after the answer once the stream has ended (the code it ran, its sources)."""
        self._suffix = suffix

    @property
    def text(self) -> str:
        """The streamed text so far, without the prefix."""
        if self._pieces:
            self._text += "".join(self._pieces)
            self._pieces.clear()
        return self._text

    @property
    def started(self) -> bool:
        """Whether any text arrived or the current message shows any."""
        return bool(self.page.shown or self.text)

    @property
    def shown_text(self) -> str:
        """The part of the text (without the prefix) that the chat shows."""
        return self.text[: max(0, self.page.visible - len(self._prefix))]

    @property
    def shown_here(self) -> bool:
        """Whether the current message shows any of the answer yet."""
        return bool(self.page.shown)

    def overflow(self) -> Part | None:
        """The current message, closed, when the text has outgrown it; else None."""
        full = self._prefix + self.text + self._suffix
        return None if self.page.fits(full, self.limit) else self.page.seal(full, self.limit)

    def interim(self) -> str | None:
        """The body an interim edit shows, or None when it would show nothing new: everything
        received but a link still being written at the end (a half citation never shows)."""
        full = self._prefix + self.text
        body = self.page.body(full[: max(settled(full), self.page.start)])
        return body if body != self.page.shown and body.strip() else None

    def final(self) -> str:
        """The body of the current message with everything received (call `overflow` first)."""
        return self.page.body(self._prefix + self.text + self._suffix)

    def sealed(self, part: Part) -> None:
        """The chat took `part` as a finished message: go on with the next one."""
        self.page = part.next

    def showed(self, body: str) -> None:
        """The chat took `body` as the current message's text."""
        self.page = replace(self.page, shown=body)

    def leave(self) -> str:
        """Leave the current message as last shown (it is blocked) and go on in the next one."""
        shown = self.page.shown
        self.page = self.page.left()
        return shown
