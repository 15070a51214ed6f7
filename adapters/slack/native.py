"""What an answer shows natively in Slack beside its text: each of Grok's tool calls as a task card
(a `task_update` chunk of the answer's stream, its sources as url elements), the answer's sources
as a context block of links, and its reasoning summary behind a button (shown privately on click).
"""

from __future__ import annotations

from collections.abc import Sequence

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    MarkdownTextObject,
    UrlSourceElement,
)
from slack_sdk.models.messages.chunk import TaskUpdateChunk

from adapters.slack.mrkdwn import escape, truncate
from bot.platform import Activity, SourceLink
from bot.streaming import short_url

__all__ = ["REASONING_ACTION", "reasoning_blocks", "reasoning_text", "sources_blocks", "task_chunk"]

REASONING_ACTION = "grok_reasoning"
TASK_TEXT = 256  # a task card's details and output (Slack's limit)
TASK_SOURCES = 10  # url elements shown in one task card
CONTEXT_ELEMENTS = 10  # a context block's elements (Block Kit)
CONTEXT_TEXT = 3_000  # one mrkdwn element's text
BUTTON_VALUE = 2_000  # a button's value (Block Kit)
CUT = "\n… (cut: Slack keeps 2,000 characters of it)"


def _label(link: SourceLink, most: int = 150) -> str:
    return truncate(" ".join((link.title or short_url(link.url)).split()), most)


def task_chunk(activity: Activity) -> TaskUpdateChunk:
    """`activity` as a task card: its title and status, the code it runs, the pages it found."""
    sources = [UrlSourceElement(url=s.url, text=_label(s)) for s in activity.sources[:TASK_SOURCES]]
    return TaskUpdateChunk(
        id=activity.id,
        title=activity.title,
        status=activity.status if activity.status in ("in_progress", "complete") else "error",
        details=truncate(activity.detail, TASK_TEXT) if activity.detail.strip() else None,
        sources=sources or None,
    )


def _mrkdwn_link(number: int, link: SourceLink) -> str:
    label = escape(_label(link)).replace("|", "¦")
    return f"{number}. <{link.url.replace('>', '%3E').replace('|', '%7C')}|{label}>"


def sources_blocks(sources: Sequence[SourceLink]) -> list[Block]:
    """The answer's sources, numbered in order, as one context block of links ("" titles as
    short URLs); what does not fit Block Kit's ten elements of 3,000 characters is counted."""
    if not sources:
        return []
    texts = ["*Sources*"]
    for number, link in enumerate(sources, 1):
        line = _mrkdwn_link(number, link)
        if len(texts[-1]) + 5 + len(line) <= CONTEXT_TEXT:
            texts[-1] += "  ·  " + line if number > 1 else "  " + line
        elif len(texts) < CONTEXT_ELEMENTS - 1:
            texts.append(line)
        else:
            texts.append(f"… and {len(sources) - number + 1} more")
            break
    return [ContextBlock(elements=[MarkdownTextObject(text=t) for t in texts])]


def reasoning_text(reasoning: str) -> str:
    """What the reasoning button carries: the summary, cut to what a button's value holds."""
    text = reasoning.strip()
    if len(text) > BUTTON_VALUE:
        text = text[: BUTTON_VALUE - len(CUT)].rstrip() + CUT
    return text


def reasoning_blocks(reasoning: str) -> list[Block]:
    """A "Show reasoning" button that carries the summary: a click shows it to the clicker."""
    if not reasoning.strip():
        return []
    button = ButtonElement(
        text="💭 Show reasoning", action_id=REASONING_ACTION, value=reasoning_text(reasoning)
    )
    return [ActionsBlock(elements=[button])]
