"""Whole, deferred and structured chat completions; request fields and headers on the wire."""

from __future__ import annotations

import httpx
import pytest

from bot.errors import DeferredGone, GrokInvalidOutput, GrokRejected
from bot.grok import (
    ChatMessage,
    ChatRequest,
    ContentDelta,
    GrokClient,
    ImagePart,
    TextPart,
    user_hash,
)
from bot.grok.net import AsyncioTransport
from tests.fakes.xai import FakeXAI, ScriptedReply, fake_xai, grok  # noqa: F401
from tests.grok import Clock, ask, client


async def test_complete_parses_text_usage_and_fingerprint(fake_xai: FakeXAI, grok: GrokClient) -> None:
    fake_xai.queue_reply(
        ScriptedReply(text="Hi there.", reasoning="Greeting.", prompt_tokens=390, cost_ticks=1487000)
    )
    completion = await grok.complete(ask(model="grok-3-mini"))
    assert completion.text == "Hi there."
    assert completion.reasoning == "Greeting."
    assert completion.finish_reason == "stop"
    assert completion.fingerprint == "fp_fake0c0ffee"
    assert completion.usage is not None
    assert completion.usage.prompt_tokens == 390
    assert completion.usage.completion_tokens == 3
    assert completion.usage.reasoning_tokens == 3
    assert completion.usage.total_tokens == 396
    assert completion.usage.cost_ticks == 1487000


async def test_default_reply_echoes_and_model_is_resolved(fake_xai: FakeXAI, grok: GrokClient) -> None:
    completion = await grok.complete(ask("what's up?", model="grok-4-latest"))
    assert completion.text == "Echo: what's up?"
    assert completion.model == "grok-4-0709"


async def test_length_finish(fake_xai: FakeXAI, grok: GrokClient) -> None:
    fake_xai.queue_reply(ScriptedReply(text="x" * 100))
    completion = await grok.complete(ask(max_tokens=5))
    assert completion.finish_reason == "length"
    assert completion.text == "x" * 20


async def test_request_fields_on_the_wire(fake_xai: FakeXAI, grok: GrokClient) -> None:
    user = user_hash("discord", "123456789012345678")
    request = ChatRequest(
        model="grok-4.3",
        messages=(
            ChatMessage("system", "Be brief."),
            ChatMessage(
                "user",
                (TextPart("What is this?"), ImagePart("data:image/png;base64,iVBORw0KGgo=", "high")),
            ),
        ),
        max_tokens=300,
        temperature=0.2,
        user=user,
        conv_id="6f1c7a52-1d7e-4c4b-9d3a-0f5a0b7c2e11",
    )
    await grok.complete(request)
    recorded = fake_xai.chat_requests()[-1]
    assert recorded.headers["x-grok-conv-id"] == "6f1c7a52-1d7e-4c4b-9d3a-0f5a0b7c2e11"
    assert recorded.headers["authorization"] == f"Bearer {fake_xai.api_key}"
    body = recorded.json
    assert body["max_completion_tokens"] == 300
    assert "max_tokens" not in body
    assert body["temperature"] == 0.2
    assert body["user"] == user
    assert "123456789012345678" not in str(body)
    assert body["messages"][0] == {"role": "system", "content": "Be brief."}
    assert body["messages"][1]["content"] == [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "high"}},
    ]
    assert "stream" not in body
    assert "reasoning_effort" not in body


async def test_no_conv_id_header_without_conv_id(fake_xai: FakeXAI, grok: GrokClient) -> None:
    await grok.complete(ask())
    assert "x-grok-conv-id" not in fake_xai.chat_requests()[-1].headers


async def test_reasoning_effort_only_to_allow_listed_models(fake_xai: FakeXAI, grok: GrokClient) -> None:
    completion = await grok.complete(ask(model="grok-4-1-fast-reasoning", reasoning_effort="high"))
    assert completion.text.startswith("Echo:")
    assert "reasoning_effort" not in fake_xai.chat_requests()[-1].json
    completion = await grok.complete(ask(model="grok-3-mini", reasoning_effort="high"))
    assert fake_xai.chat_requests()[-1].json["reasoning_effort"] == "high"
    assert completion.model == "grok-3-mini-high"
    assert len(fake_xai.chat_requests()) == 2


async def test_reasoning_400_drops_effort_and_retries_once(fake_xai: FakeXAI) -> None:
    async with httpx.AsyncClient(transport=AsyncioTransport()) as http:
        grok = client(fake_xai, http, reasoning_effort_models=("grok-4*",))
        completion = await grok.complete(ask(model="grok-4-0709", reasoning_effort="high"))
        assert completion.text.startswith("Echo:")
        first, second = fake_xai.chat_requests()
        assert first.json["reasoning_effort"] == "high"
        assert "reasoning_effort" not in second.json
        fake_xai.queue_reply(ScriptedReply(text="streamed anyway"))
        events = [e async for e in grok.stream(ask(model="grok-4-0709", reasoning_effort="low"))]
        assert "".join(e.text for e in events if isinstance(e, ContentDelta)) == "streamed anyway"
        assert len(fake_xai.chat_requests()) == 4


async def test_disallowed_effort_value_is_dropped(fake_xai: FakeXAI, grok: GrokClient) -> None:
    completion = await grok.complete(ask(model="grok-3-mini", reasoning_effort="medium"))
    assert completion.model == "grok-3-mini"
    assert [("reasoning_effort" in r.json) for r in fake_xai.chat_requests()] == [True, False]


async def test_reasoning_retry_happens_only_once(fake_xai: FakeXAI, grok: GrokClient) -> None:
    reasoning_400 = {"code": "x", "error": "Argument not supported on this model: reasoningEffort"}
    fake_xai.fail_next(400, times=2, body=reasoning_400)
    with pytest.raises(GrokRejected, match="reasoningEffort"):
        await grok.complete(ask(model="grok-3-mini", reasoning_effort="low"))
    assert len(fake_xai.chat_requests()) == 2


async def test_other_400_with_effort_is_not_retried(fake_xai: FakeXAI, grok: GrokClient) -> None:
    with pytest.raises(GrokRejected, match="maximum prompt length"):
        await grok.complete(ask("word " * 120_000, model="grok-3-mini", reasoning_effort="low"))
    assert len(fake_xai.chat_requests()) == 1


async def test_deferred_202_202_200_then_gone(fake_xai: FakeXAI, grok: GrokClient) -> None:
    fake_xai.queue_reply(ScriptedReply(text="Done later.", deferred_pending_polls=2))
    request_id = await grok.start_deferred(ask(conv_id="conv-9"))
    post = fake_xai.chat_requests()[-1]
    assert post.json["deferred"] is True
    assert "stream" not in post.json
    assert post.headers["x-grok-conv-id"] == "conv-9"
    assert await grok.fetch_deferred(request_id) is None
    assert await grok.fetch_deferred(request_id) is None
    completion = await grok.fetch_deferred(request_id)
    assert completion is not None
    assert completion.text == "Done later."
    assert completion.fingerprint == fake_xai.fingerprint
    with pytest.raises(DeferredGone):
        await grok.fetch_deferred(request_id)
    polls = [r for r in fake_xai.requests if r.path == f"/v1/chat/deferred-completion/{request_id}"]
    assert len(polls) == 4


async def test_deferred_unknown_id_is_gone(grok: GrokClient) -> None:
    with pytest.raises(DeferredGone) as caught:
        await grok.fetch_deferred("f15c114e-f47d-40ca-8d5c-8c23d656eeb6")
    assert caught.value.status == 404


async def test_deferred_expires_after_a_day(fake_xai: FakeXAI, grok: GrokClient) -> None:
    clock = Clock()
    fake_xai.now = clock
    fake_xai.queue_reply(ScriptedReply(text="too late", deferred_pending_polls=0))
    request_id = await grok.start_deferred(ask())
    clock.t += 24 * 3600 + 1
    with pytest.raises(DeferredGone):
        await grok.fetch_deferred(request_id)


SCHEMA = {
    "type": "object",
    "properties": {"vendor": {"type": "string"}, "total": {"type": "number", "minimum": 0}},
    "required": ["vendor", "total"],
    "additionalProperties": False,
}


async def test_structured_valid(fake_xai: FakeXAI, grok: GrokClient) -> None:
    fake_xai.queue_reply(ScriptedReply(text='{"vendor": "Acme", "total": 12.5}'))
    value, completion = await grok.structured(ask(), schema=SCHEMA, name="invoice")
    assert value == {"vendor": "Acme", "total": 12.5}
    assert completion.text == '{"vendor": "Acme", "total": 12.5}'
    fmt = fake_xai.chat_requests()[-1].json["response_format"]
    assert fmt == {
        "type": "json_schema",
        "json_schema": {"name": "invoice", "strict": True, "schema": SCHEMA},
    }


@pytest.mark.parametrize(
    "raw",
    [
        '{"vendor": "Acme", "total": ',  # cut short
        "Sure! Here is the JSON you asked for.",
        '{"vendor": "Acme", "total": -1}',
        '{"vendor": "Acme"}',
        '{"vendor": "Acme", "total": 3, "extra": true}',
        '["Acme", 3]',
    ],
)
async def test_structured_invalid_is_never_a_silent_pass(
    fake_xai: FakeXAI, grok: GrokClient, raw: str
) -> None:
    fake_xai.queue_reply(ScriptedReply(text=raw))
    with pytest.raises(GrokInvalidOutput) as caught:
        await grok.structured(ask(), schema=SCHEMA, name="invoice")
    assert caught.value.raw == raw
    assert "invoice" in str(caught.value)


async def test_structured_schema_the_server_refuses(fake_xai: FakeXAI, grok: GrokClient) -> None:
    schema = {"type": "object", "properties": {"kind": {"enum": []}}}
    with pytest.raises(GrokRejected, match="empty enum"):
        await grok.structured(ask(), schema=schema, name="bad")
