"""Markdown for a terminal: an answer is cut into finished blocks as it streams, and each block is
rendered by rich (bold, italics, code, code blocks, lists, headings, links as text and URL).

rich's Markdown renders a whole document; rendering each finished block once, as it completes,
keeps a streamed answer's printed lines final (nothing printed is ever redrawn).
"""

from __future__ import annotations

import io
import re

from rich.console import Console
from rich.markdown import Markdown

FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
HEADING = re.compile(r"^ {0,3}#{1,6}\s")
ANSI = re.compile(r"\x1b\[[0-9;]*m")
BACKGROUND = re.compile(r"\x1b\[(?:[0-9]+;)*(?:4[0-8]|10[0-7])[;m]")


def finished_blocks(text: str) -> int:
    """How much of `text` is whole blocks: up to the last blank line, closed code fence or heading
    line that is outside any code block. What follows may still change as the answer streams."""
    end = 0
    offset = 0
    fence = ""
    for line in text.splitlines(keepends=True):
        offset += len(line)
        if not line.endswith("\n"):
            break  # the last line is still being written
        opening = FENCE.match(line)
        if fence:
            if opening and opening.group(1).startswith(fence) and not line.strip(" \n`~"):
                fence = ""
                end = offset
        elif opening:
            fence = opening.group(1)[:3]
        elif not line.strip() or HEADING.match(line):
            end = offset
    return end


class Renderer:
    """Renders Markdown blocks for a terminal of a given width, indented under the speaker's label."""

    def __init__(self, *, indent: int) -> None:
        self.indent = indent

    def render(self, block: str, *, width: int) -> list[str]:
        """The block's rows, styled with ANSI codes, without rich's padding or blank edges."""
        room = max(20, width - self.indent - 1)  # never the last column: no pending wraps
        console = Console(
            file=io.StringIO(), force_terminal=True, color_system="standard", width=room, highlight=False
        )
        console.print(Markdown(block, hyperlinks=False), end="")
        rows = [row.rstrip(" ") for row in console.file.getvalue().split("\n")]  # type: ignore[attr-defined]
        while rows and _blank(rows[0]):
            rows.pop(0)
        while rows and _blank(rows[-1]):
            rows.pop()
        return ["" if _blank(row) else row for row in rows]


def _blank(row: str) -> bool:
    """True for a row that shows nothing (spaces, or style codes around nothing)."""
    return not ANSI.sub("", row).strip() and not BACKGROUND.search(row)  # a code block's padding shows


__all__ = ["Renderer", "finished_blocks"]
