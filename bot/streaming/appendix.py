"""What follows an answer's text when Grok used tools: the code it ran with its output, and the
numbered sources, as standard Markdown that the layout lays out like the rest of the answer.

Links are written `[label](<url>)`: CommonMark takes `<…>` as a link destination (and Discord
reads it as "no preview"); the URL is percent-encoded where it would end the link early, so the
layout's link rule (never cut inside `[text](url)`) sees each link whole.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from bot.grok import ToolCall
from bot.platform import SourceLink
from bot.streaming.activities import short_url

__all__ = ["code_appendix", "code_markdown", "link_markdown", "sources_markdown"]

_UNSAFE = {" ": "%20", "(": "%28", ")": "%29", "<": "%3C", ">": "%3E", "\n": "", "\t": "%09"}
_LABEL_SPECIALS = re.compile(r"([\[\]\\])")
OUTPUT_CHARS = 3_000  # of a code run's output shown in the answer


def link_markdown(link: SourceLink) -> str:
    """`[title](<url>)`: the title where known, else a short form of the URL."""
    url = "".join(_UNSAFE.get(char, char) for char in link.url)
    label = _LABEL_SPECIALS.sub(r"\\\1", " ".join((link.title or short_url(link.url)).split()))
    return f"[{label}](<{url}>)"


def sources_markdown(links: Sequence[SourceLink]) -> str:
    """The numbered list of an answer's sources, under a bold heading; "" when there are none."""
    if not links:
        return ""
    lines = [f"{n}. {link_markdown(link)}" for n, link in enumerate(links, 1)]
    return "**Sources**\n" + "\n".join(lines)


def _fenced(text: str, info: str = "") -> str:
    """`text` in a code block whose fence is longer than any backtick run inside it."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{info}\n{text.rstrip(chr(10))}\n{fence}"


def code_markdown(call: ToolCall) -> str:
    """A code run: its code and, when it printed anything, its output (cut to OUTPUT_CHARS)."""
    blocks = [_fenced(call.code, "python")]
    output = "".join(o.text for o in call.outputs if o.text)
    if len(output) > OUTPUT_CHARS:
        output = output[:OUTPUT_CHARS] + "\n… (output cut)"
    if output.strip():
        blocks.append("Output:\n" + _fenced(output, "text"))
    return "\n".join(blocks)


def code_appendix(calls: Sequence[ToolCall]) -> str:
    """The code runs among `calls`, each after a blank line; "" when there were none."""
    return "".join(
        f"\n\n{code_markdown(call)}" for call in calls if call.kind == "code" and call.code.strip()
    )
