"""The xAI wire format: request bodies out, typed values in, and HTTP errors mapped (by status
only) onto bot.errors with the API key redacted from every message.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from bot.errors import (
    GrokAuthFailed,
    GrokError,
    GrokModerated,
    GrokOutOfCredits,
    GrokRateLimited,
    GrokRejected,
    GrokUnavailable,
)
from bot.grok.pricing import TICKS_PER_CENT
from bot.grok.types import (
    ApiKeyInfo,
    ChatMessage,
    ChatRequest,
    Completion,
    ModelInfo,
    TextPart,
    Usage,
)

_CREDITS = re.compile(r"credits|spending limit", re.IGNORECASE)
_KEYLIKE = re.compile(r"xai-[A-Za-z0-9_\-]{12,}")
MESSAGE_LIMIT = 300


def message_json(message: ChatMessage) -> dict[str, Any]:
    if isinstance(message.content, str):
        return {"role": message.role, "content": message.content}
    parts: list[dict[str, Any]] = []
    for part in message.content:
        if isinstance(part, TextPart):
            parts.append({"type": "text", "text": part.text})
        else:
            image: dict[str, Any] = {"url": part.url}
            if part.detail is not None:
                image["detail"] = part.detail
            parts.append({"type": "image_url", "image_url": image})
    return {"role": message.role, "content": parts}


def chat_body(request: ChatRequest, *, send_reasoning_effort: bool) -> dict[str, Any]:
    """The JSON body of POST /chat/completions (without `stream`/`deferred`)."""
    body: dict[str, Any] = {
        "model": request.model,
        "messages": [message_json(m) for m in request.messages],
    }
    if request.max_tokens is not None:
        body["max_completion_tokens"] = request.max_tokens
    if request.temperature is not None:
        body["temperature"] = request.temperature
    if request.reasoning_effort is not None and send_reasoning_effort:
        body["reasoning_effort"] = request.reasoning_effort
    if request.response_format is not None:
        body["response_format"] = dict(request.response_format)
    if request.user is not None:
        body["user"] = request.user
    return body


def int_of(value: Any) -> int:
    """An integer field, or 0 when absent or not an integer."""
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def parse_usage(raw: Any) -> Usage | None:
    if not isinstance(raw, dict):
        return None
    prompt_details = raw.get("prompt_tokens_details")
    completion_details = raw.get("completion_tokens_details")
    if not isinstance(prompt_details, dict):
        prompt_details = {}
    if not isinstance(completion_details, dict):
        completion_details = {}
    prompt = int_of(raw.get("prompt_tokens"))
    completion = int_of(raw.get("completion_tokens"))
    reasoning = int_of(completion_details.get("reasoning_tokens"))
    cost = raw.get("cost_in_usd_ticks")
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        reasoning_tokens=reasoning,
        cached_tokens=int_of(prompt_details.get("cached_tokens")),
        image_tokens=int_of(prompt_details.get("image_tokens")),
        total_tokens=int_of(raw.get("total_tokens")) or prompt + completion + reasoning,
        cost_ticks=cost if isinstance(cost, int) and not isinstance(cost, bool) else None,
    )


def parse_completion(raw: Any) -> Completion:
    """A chat.completion object (also the 200 body of a deferred result)."""
    try:
        choice = raw["choices"][0]
        message = choice["message"]
        return Completion(
            id=str(raw.get("id") or ""),
            model=str(raw.get("model") or ""),
            text=message.get("content") or "",
            reasoning=message.get("reasoning_content") or "",
            finish_reason=choice.get("finish_reason") or "",
            usage=parse_usage(raw.get("usage")),
            fingerprint=raw.get("system_fingerprint") or "",
        )
    except (KeyError, IndexError, TypeError, AttributeError) as exc:
        raise GrokUnavailable("xAI sent a completion without a readable choice") from exc


def _strings(value: Any) -> tuple[str, ...]:
    return tuple(str(v) for v in value) if isinstance(value, list) else ()


def parse_language_model(raw: Mapping[str, Any]) -> ModelInfo:
    return ModelInfo(
        id=str(raw["id"]),
        aliases=_strings(raw.get("aliases")),
        input_modalities=_strings(raw.get("input_modalities")),
        output_modalities=_strings(raw.get("output_modalities")),
        prompt_price=int_of(raw.get("prompt_text_token_price")),
        cached_prompt_price=int_of(raw.get("cached_prompt_text_token_price")),
        completion_price=int_of(raw.get("completion_text_token_price")),
        image_price=int_of(raw.get("prompt_image_token_price")),
        fingerprint=str(raw.get("fingerprint") or ""),
    )


def parse_image_model(raw: Mapping[str, Any]) -> ModelInfo:
    max_prompt = raw.get("max_prompt_length")
    return ModelInfo(
        id=str(raw["id"]),
        aliases=_strings(raw.get("aliases")),
        input_modalities=_strings(raw.get("input_modalities")),
        output_modalities=_strings(raw.get("output_modalities")),
        image_price=int_of(raw.get("image_price")) * TICKS_PER_CENT,
        fingerprint=str(raw.get("fingerprint") or ""),
        max_prompt_length=max_prompt if isinstance(max_prompt, int) else None,
    )


def parse_api_key(raw: Mapping[str, Any]) -> ApiKeyInfo:
    return ApiKeyInfo(
        redacted_key=str(raw.get("redacted_api_key") or ""),
        name=str(raw.get("name") or ""),
        team_id=str(raw.get("team_id") or ""),
        blocked=bool(raw.get("api_key_blocked")) or bool(raw.get("team_blocked")),
        disabled=bool(raw.get("api_key_disabled")),
        acls=_strings(raw.get("acls")),
    )


def redact(text: str, secret: str) -> str:
    if secret:
        text = text.replace(secret, "xai-***")
    return _KEYLIKE.sub("xai-***", text)


def error_text(content: bytes) -> str:
    """The message of an error body: flat `error` string, nested `error.message`, or raw text."""
    try:
        body = json.loads(content)
    except ValueError:
        body = None
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, str):
            return error
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return str(error["message"])
    return content.decode("utf-8", "replace").strip()


def retry_after_seconds(value: str | None) -> float | None:
    """Retry-After as seconds (delta-seconds or an HTTP date), None when absent or unreadable."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def is_credit_error(message: str) -> bool:
    return _CREDITS.search(message) is not None


def error_for(status: int, content: bytes, *, secret: str, retry_after: float | None = None) -> GrokError:
    """The error for a non-success HTTP answer. Branches on the status, reading the text only to
    tell apart a wrong key, moderation and exhausted credits (all reported as 400/403/429)."""
    text = redact(error_text(content), secret)[:MESSAGE_LIMIT] or "(no message)"
    if status in (401, 403) or (status == 400 and "incorrect api key" in text.lower()):
        if is_credit_error(text):
            return GrokOutOfCredits(
                f"xAI refused the request: the team has no credits left or reached its spending "
                f"limit ({status}): {text}",
                status=status,
            )
        return GrokAuthFailed(f"xAI refused the API key ({status}): {text}", status=status)
    if status == 429:
        if is_credit_error(text):
            return GrokOutOfCredits(
                f"xAI refused the request: the team has no credits left or reached its spending "
                f"limit (429): {text}",
                status=429,
            )
        return GrokRateLimited(f"xAI rate limit (429): {text}", retry_after=retry_after)
    if status == 400 and "moderation" in text.lower():
        return GrokModerated(f"xAI moderation blocked it (400): {text}", status=400)
    if 400 <= status < 500:
        return GrokRejected(f"xAI rejected the request ({status}): {text}", status=status)
    return GrokUnavailable(f"xAI is unavailable ({status}): {text}", status=status)
