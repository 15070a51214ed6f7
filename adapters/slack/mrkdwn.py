"""Deterministic conversion of standard Markdown (what the model writes) to Slack mrkdwn.

Used where Slack only takes mrkdwn: `text` fallbacks of block messages, ephemeral messages, section
blocks and file comments. Model answers themselves go out as `markdown_text` / markdown blocks.
Also the reverse direction for incoming text: `unescape` (Slack escapes only &, < and >).
"""

from __future__ import annotations

import re
import unicodedata

_FENCE = re.compile(r"^( {0,3})(`{3,}|~{3,})\s*([^`\s]*)[^`]*$")
_HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)(?:\s+#+)?\s*$")
_RULE = re.compile(r"^ {0,3}([-*_])(?:\s*\1){2,}\s*$")
_BULLET = re.compile(r"^(\s*)[-*+]\s+(\[[ xX]\]\s+)?(.*)$")
_ORDERED = re.compile(r"^(\s*)(\d{1,9})[.)]\s+(.*)$")
_QUOTE = re.compile(r"^ {0,3}>\s?(.*)$")
_TABLE_RULE = re.compile(r"^\s*\|?\s*:?-{2,}:?\s*(\|\s*:?-{2,}:?\s*)*\|?\s*$")

# Inline tokens, tried left to right at each position; the first group that matches wins.
_INLINE = re.compile(
    r"(?P<code>(?P<ticks>`+)(?P<code_body>.+?)(?P=ticks))"
    r"|(?P<image>!\[(?P<alt>[^\]\n]*)\]\((?P<image_url>[^)\s]+)(?:\s+\"[^\"]*\")?\))"
    r"|(?P<link>\[(?P<label>[^\]\n]+)\]\((?:<(?P<url_angled>[^<>\s]+)>|(?P<url>[^)\s]+))(?:\s+\"[^\"]*\")?\))"
    r"|(?P<slack><(?:[@#!][^<>\s][^<>]*|https?://[^<>\s]+|mailto:[^<>\s]+)>)"
    r"|(?P<bolditalic>\*\*\*(?=\S)(?P<bi_body>.+?)(?<=\S)\*\*\*)"
    r"|(?P<bold>\*\*(?=\S)(?P<bold_body>.+?)(?<=\S)\*\*|(?<!\w)__(?=\S)(?P<bold_body2>.+?)(?<=\S)__(?!\w))"
    r"|(?P<strike>~~(?=\S)(?P<strike_body>.+?)(?<=\S)~~)"
    r"|(?P<italic>(?<![*\w])\*(?=[^\s*])(?P<italic_body>.+?)(?<=[^\s*])\*(?!\*)"
    r"|(?<!\w)_(?=[^\s_])(?P<italic_body2>.+?)(?<=[^\s_])_(?!\w))"
)


def escape(text: str) -> str:
    """Slack's three control characters, escaped as Slack requires."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def unescape(text: str) -> str:
    """Undo Slack's escaping of incoming message text (only &, < and > are escaped)."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _wide(char: str) -> bool:
    return unicodedata.east_asian_width(char) in ("W", "F")


def _spaced(source: str, start: int, end: int, rendered: str) -> str:
    """Slack only sees a marker next to a space or punctuation: pad it where it touches CJK text."""
    before = " " if start > 0 and _wide(source[start - 1]) else ""
    after = " " if end < len(source) and _wide(source[end]) else ""
    return before + rendered + after


def inline(text: str) -> str:
    """Convert one line's inline Markdown (emphasis, code, links) to mrkdwn, escaping the rest."""
    out: list[str] = []
    position = 0
    for match in _INLINE.finditer(text):
        out.append(escape(text[position : match.start()]))
        position = match.end()
        groups = match.groupdict()
        if groups["code"]:
            body = groups["code_body"].strip() if groups["ticks"] == "`" else groups["code_body"]
            out.append(_spaced(text, match.start(), match.end(), f"`{escape(body.replace('`', 'ˋ'))}`"))
        elif groups["image"]:
            out.append(f"<{escape(groups['image_url'])}|{escape(groups['alt'] or 'image')}>")
        elif groups["link"]:
            label = _plain(groups["label"]).replace("|", "¦")
            url = groups["url"] or groups["url_angled"]  # `[label](<url>)`: CommonMark's <> form
            out.append(f"<{escape(url)}|{escape(label)}>")
        elif groups["slack"]:
            out.append(groups["slack"])  # mentions, channel links and autolinks stay as they are
        elif groups["bolditalic"]:
            out.append(_spaced(text, match.start(), match.end(), f"*_{inline(groups['bi_body'])}_*"))
        elif groups["bold"]:
            body = groups["bold_body"] or groups["bold_body2"]
            out.append(_spaced(text, match.start(), match.end(), f"*{_no_marker(inline(body), '*')}*"))
        elif groups["strike"]:
            out.append(_spaced(text, match.start(), match.end(), f"~{inline(groups['strike_body'])}~"))
        elif groups["italic"]:
            body = groups["italic_body"] or groups["italic_body2"]
            out.append(_spaced(text, match.start(), match.end(), f"_{_no_marker(inline(body), '_')}_"))
    out.append(escape(text[position:]))
    return "".join(out)


def _no_marker(rendered: str, marker: str) -> str:
    """Nested emphasis of the same mrkdwn marker would close the outer one early: drop it."""
    return rendered.replace(marker, "") if rendered.count(marker) % 2 == 0 else rendered


def _plain(text: str) -> str:
    """A link label without emphasis markers (mrkdwn renders none inside <url|label>)."""
    return re.sub(r"(\*\*|__|~~|`)", "", text)


def _table(rows: list[str]) -> list[str]:
    """Markdown tables have no mrkdwn form: keep them aligned in a code block."""
    cells = [[cell.strip() for cell in row.strip().strip("|").split("|")] for row in rows]
    body = [row for row, line in zip(cells, rows, strict=True) if not _TABLE_RULE.match(line)]
    width = max(len(row) for row in body)
    widths = [max(len(row[i]) if i < len(row) else 0 for row in body) for i in range(width)]
    lines = []
    for index, row in enumerate(body):
        padded = [(row[i] if i < len(row) else "").ljust(widths[i]) for i in range(width)]
        lines.append(escape(" | ".join(padded).rstrip()))
        if index == 0 and len(body) > 1:
            lines.append("-+-".join("-" * w for w in widths))
    return ["```", *lines, "```"]


def markdown_to_mrkdwn(markdown: str) -> str:
    """Standard Markdown → Slack mrkdwn. Deterministic; code blocks keep their text verbatim."""
    lines = markdown.replace("\r\n", "\n").split("\n")
    out: list[str] = []
    fence: str | None = None
    index = 0
    while index < len(lines):
        line = lines[index]
        match = _FENCE.match(line)
        if fence is not None:
            closes = match and match.group(2)[0] == fence[0] and len(match.group(2)) >= len(fence)
            if closes and match and not match.group(3):
                out.append("```")
                fence = None
                index += 1
                continue
            out.append(escape(line))
            index += 1
            continue
        if match:
            fence = match.group(2)
            out.append("```")  # mrkdwn ignores the language tag
            index += 1
            continue
        if "|" in line and index + 1 < len(lines) and _TABLE_RULE.match(lines[index + 1]):
            end = index + 2
            while end < len(lines) and "|" in lines[end] and lines[end].strip():
                end += 1
            out.extend(_table(lines[index:end]))
            index = end
            continue
        out.append(_block_line(line))
        index += 1
    if fence is not None:
        out.append("```")
    return "\n".join(out)


def _block_line(line: str) -> str:
    if match := _HEADING.match(line):
        return f"*{_no_marker(inline(match.group(2)), '*')}*"
    if _RULE.match(line):
        return "──────────"
    if match := _QUOTE.match(line):
        return "> " + _block_line(match.group(1)) if match.group(1) else ">"
    if match := _BULLET.match(line):
        indent, task, rest = match.groups()
        mark = "•" if not task else ("☑" if task.strip("[] ").lower() == "x" else "☐")
        return f"{'    ' * (len(indent) // 2)}{mark} {inline(rest)}"
    if match := _ORDERED.match(line):
        indent, number, rest = match.groups()
        return f"{'    ' * (len(indent) // 2)}{number}. {inline(rest)}"
    return inline(line)


def truncate(text: str, limit: int, *, suffix: str = "…") -> str:
    """At most `limit` characters, cut at a word boundary where one is near."""
    if len(text) <= limit:
        return text
    cut = text[: limit - len(suffix)]
    space = cut.rfind(" ")
    if space > limit * 0.8:
        cut = cut[:space]
    # Never leave half an entity (&amp;) or an open <link| behind.
    cut = re.sub(r"&[a-z]{0,4}$", "", cut)
    cut = re.sub(r"<[^>]*$", "", cut)
    return cut + suffix
