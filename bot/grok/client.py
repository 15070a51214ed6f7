"""GrokClient: the xAI client every part of grokbot uses, one class over its calls: Chat
Completions (bot/grok/chat.py), the Responses API (bot/grok/responses.py), image generation
(bot/grok/generation.py), and model and key listings with live prices (bot/grok/listings.py).
"""

from __future__ import annotations

from bot.grok.chat import ChatCalls
from bot.grok.core import REASONING_EFFORT_MODELS
from bot.grok.generation import ImageCalls
from bot.grok.listings import ListingCalls
from bot.grok.responses import ResponseCalls
from bot.grok.stream import READ_GATHER_S, Gathering

__all__ = ["READ_GATHER_S", "REASONING_EFFORT_MODELS", "Gathering", "GrokClient"]


class GrokClient(ChatCalls, ResponseCalls, ImageCalls, ListingCalls):
    """xAI's REST API, typed. Give it one shared httpx.AsyncClient (closed by its owner); every
    call is paced under the client-side limits and retried (before any content) per its policy."""
