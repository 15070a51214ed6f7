"""GrokClient: the xAI client every part of grokbot uses, one class over its calls: Chat
Completions (bot/grok/chat.py), the Responses API (bot/grok/responses.py), image generation
(bot/grok/generation.py), and model and key listings with live prices (bot/grok/listings.py); and
`http_client()`, the one shared HTTP client it runs on.
"""

from __future__ import annotations

import httpx

from bot.grok.chat import ChatCalls
from bot.grok.core import REASONING_EFFORT_MODELS
from bot.grok.generation import ImageCalls
from bot.grok.listings import ListingCalls
from bot.grok.net import AsyncioTransport
from bot.grok.pacing import CONCURRENCY as PACED_STREAMS
from bot.grok.responses import ResponseCalls
from bot.grok.stream import READ_GATHER_S, Gathering

__all__ = ["READ_GATHER_S", "REASONING_EFFORT_MODELS", "Gathering", "GrokClient", "http_client"]


class GrokClient(ChatCalls, ResponseCalls, ImageCalls, ListingCalls):
    """xAI's REST API, typed. Give it one shared httpx.AsyncClient (closed by its owner); every
    call is paced under the client-side limits and retried (before any content) per its policy."""


def http_client() -> httpx.AsyncClient:
    """The one shared HTTP client for xAI: keep-alive, explicit timeouts (streams read per chunk),
    on the lean asyncio network layer (bot/grok/net.py). Room for every paced stream at once
    (Pacing's concurrency) plus the unpaced calls beside them."""
    limits = httpx.Limits(max_connections=PACED_STREAMS + 16, max_keepalive_connections=32)
    return httpx.AsyncClient(
        timeout=httpx.Timeout(connect=10.0, read=120.0, write=30.0, pool=30.0),
        transport=AsyncioTransport(limits=limits),
    )
