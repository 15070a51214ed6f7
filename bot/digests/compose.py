"""Composing a digest: the channel transcript in chunks, one structured (JSON-schema) Grok call per
chunk, a deterministic merge of the parts, and the Markdown the adapters render."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from bot.grok import ChatMessage, ChatRequest, Completion, GrokClient, Usage
from bot.platform import ChannelMessage, Place

MAX_MESSAGE_CHARS = 2_000  # one chat message in the transcript; longer ones are cut
CHUNK_CHARS = 24_000  # transcript characters per Grok call (about 7k tokens)
ANSWER_TOKENS = 2_000
ITEMS = 20

_TEXT = {"type": "string"}
DIGEST_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "topics": {
            "type": "array",
            "maxItems": ITEMS,
            "items": {
                "type": "object",
                "properties": {"title": _TEXT, "summary": _TEXT},
                "required": ["title", "summary"],
                "additionalProperties": False,
            },
        },
        "decisions": {"type": "array", "maxItems": ITEMS, "items": _TEXT},
        "open_questions": {"type": "array", "maxItems": ITEMS, "items": _TEXT},
        "action_items": {
            "type": "array",
            "maxItems": ITEMS,
            "items": {
                "type": "object",
                "properties": {"task": _TEXT, "owner": {"type": ["string", "null"]}},
                "required": ["task", "owner"],
                "additionalProperties": False,
            },
        },
        "links": {
            "type": "array",
            "maxItems": ITEMS,
            "items": {
                "type": "object",
                "properties": {"url": _TEXT, "title": _TEXT},
                "required": ["url", "title"],
                "additionalProperties": False,
            },
        },
    },
    "required": ["topics", "decisions", "open_questions", "action_items", "links"],
    "additionalProperties": False,
}

SYSTEM_PROMPT = (
    "You write digests of a chat channel for people who missed the conversation. The messages are "
    "given oldest first, one per line as `[time] author: text`. Extract the topics discussed (a short "
    "title and one or two sentences each), decisions that were made, questions still open, action "
    "items with the name of their owner when someone took or was given the task (null otherwise), and "
    "notable links (the URL exactly as written and a short title). Use only what the messages say; "
    "never invent. Write in the language most messages use. Leave a list empty when there is nothing "
    "for it. Reply with the JSON object only."
)


@dataclass
class Composed:
    text: str
    message_count: int
    cost_ticks: int = 0
    model: str = ""
    usage: Usage = field(default_factory=Usage)


async def compose(
    grok: GrokClient,
    messages: Sequence[ChannelMessage],
    *,
    source: Place,
    target: Place,
    since: datetime,
    until: datetime,
    timezone: str,
    model: str,
    chunk_chars: int,
) -> Composed:
    """The digest of `messages` from `source`, to be posted in `target`, and what making it cost."""
    where = "" if source.channel == target.channel else f" of <#{source.channel}>"
    period = f"{local_time(since, timezone)} – {local_time(until, timezone)} ({timezone})"
    if not messages:
        return Composed(f"📋 Nothing new{where} between {period}.", 0)
    chunks = _chunks([_line(m, timezone) for m in messages], chunk_chars)
    partials: list[dict[str, Any]] = []
    composed = Composed("", len(messages), model=model)
    for number, chunk in enumerate(chunks, 1):
        part = f" (part {number} of {len(chunks)})" if len(chunks) > 1 else ""
        request = _request(model, f"Channel messages from {period}{part}:\n\n{chunk}")
        value, completion = await grok.structured(request, schema=DIGEST_SCHEMA, name="channel_digest")
        partials.append(value)
        _add_cost(composed, completion, grok)
    header = f"📋 **Digest{where}** · {period} · {len(messages)} messages"
    composed.text = render(merge(partials), header=header)
    return composed


def _request(model: str, transcript: str) -> ChatRequest:
    return ChatRequest(
        model=model,
        messages=(ChatMessage("system", SYSTEM_PROMPT), ChatMessage("user", transcript)),
        max_tokens=ANSWER_TOKENS,
    )


def _line(message: ChannelMessage, timezone: str) -> str:
    text = " ".join(message.text.split())
    if len(text) > MAX_MESSAGE_CHARS:
        text = text[:MAX_MESSAGE_CHARS] + " …"
    thread = " (in a thread)" if message.thread else ""
    sent = message.sent_at.astimezone(ZoneInfo(timezone))
    return f"[{sent:%a %d %H:%M}] {message.author.name}{thread}: {text}"


def _chunks(lines: Sequence[str], budget: int) -> list[str]:
    """Consecutive lines grouped into chunks of at most `budget` characters (a line is never split)."""
    chunks: list[str] = []
    current: list[str] = []
    size = 0
    for line in lines:
        if current and size + len(line) + 1 > budget:
            chunks.append("\n".join(current))
            current, size = [], 0
        current.append(line)
        size += len(line) + 1
    if current:
        chunks.append("\n".join(current))
    return chunks


def merge(partials: Sequence[Mapping[str, Any]]) -> dict[str, list[Any]]:
    """Partial digests (chronological) → one, deterministically.

    Chosen over a final Grok call: it costs nothing, cannot fail validation, and keeps every item
    and owner as extracted; topics of the same title are joined, exact repeats are dropped."""
    merged: dict[str, list[Any]] = {"topics": _joined_topics(partials)}
    for name, key in _SAME.items():
        merged[name] = _unique([item for partial in partials for item in partial[name]], key)
    return merged


# What makes two items of a section the same item.
_SAME: dict[str, Callable[[Any], str]] = {
    "decisions": lambda item: _norm(item),
    "open_questions": lambda item: _norm(item),
    "action_items": lambda action: _norm(f"{action['task']}\x00{action['owner'] or ''}"),
    "links": lambda link: str(link["url"]),
}


def _joined_topics(partials: Sequence[Mapping[str, Any]]) -> list[dict[str, str]]:
    topics: dict[str, dict[str, str]] = {}
    for topic in (topic for partial in partials for topic in partial["topics"]):
        key = _norm(topic["title"])
        if key in topics:
            topics[key]["summary"] += " " + topic["summary"]
        else:
            topics[key] = dict(topic)
    return list(topics.values())


def _unique(items: Sequence[Any], key: Callable[[Any], str]) -> list[Any]:
    seen: set[str] = set()
    kept = []
    for item in items:
        if key(item) not in seen:
            seen.add(key(item))
            kept.append(item)
    return kept


def render(digest: Mapping[str, Sequence[Any]], *, header: str) -> str:
    """Markdown for the adapters to render natively."""
    sections = [header]
    if digest["topics"]:
        sections.append(
            "**Topics**\n" + "\n".join(f"• **{t['title']}**: {t['summary']}" for t in digest["topics"])
        )
    if digest["decisions"]:
        sections.append("**Decisions**\n" + "\n".join(f"• {d}" for d in digest["decisions"]))
    if digest["open_questions"]:
        sections.append("**Open questions**\n" + "\n".join(f"• {q}" for q in digest["open_questions"]))
    if digest["action_items"]:
        items = [f"• {a['task']} — {a['owner'] or 'no owner yet'}" for a in digest["action_items"]]
        sections.append("**Action items**\n" + "\n".join(items))
    if digest["links"]:
        sections.append(
            "**Links**\n" + "\n".join(f"• [{k['title'] or k['url']}]({k['url']})" for k in digest["links"])
        )
    if len(sections) == 1:
        sections.append("Nothing notable: no topics, decisions, questions, tasks or links.")
    return "\n\n".join(sections)


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


def _add_cost(composed: Composed, completion: Completion, grok: GrokClient) -> None:
    usage = completion.usage or Usage()
    composed.cost_ticks += grok.prices.cost_ticks(completion.model or composed.model, usage)
    total = composed.usage
    composed.usage = Usage(
        prompt_tokens=total.prompt_tokens + usage.prompt_tokens,
        completion_tokens=total.completion_tokens + usage.completion_tokens,
        reasoning_tokens=total.reasoning_tokens + usage.reasoning_tokens,
        cached_tokens=total.cached_tokens + usage.cached_tokens,
        total_tokens=total.total_tokens + usage.total_tokens,
    )
    composed.model = completion.model or composed.model


def local_time(moment: datetime, timezone: str) -> str:
    return f"{moment.astimezone(ZoneInfo(timezone)):%a %d %b %H:%M}"
