"""The fake xAI server itself, read raw: framing, bodies and statuses from the reference (§14)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.fakes.xai import FakeXAI, ScriptedReply, fake_xai  # noqa: F401


def chat(**extra: Any) -> dict[str, Any]:
    return {"model": "grok-3-mini", "messages": [{"role": "user", "content": "hi"}], **extra}


async def test_no_credentials_is_401_flat(fake_xai: FakeXAI) -> None:
    async with httpx.AsyncClient() as http:
        response = await http.get(f"{fake_xai.base_url}/models")
    assert response.status_code == 401
    body = response.json()
    assert set(body) == {"code", "error"}
    assert isinstance(body["error"], str)


async def test_wrong_key_is_400(fake_xai: FakeXAI) -> None:
    async with httpx.AsyncClient() as http:
        response = await http.get(
            f"{fake_xai.base_url}/models", headers={"Authorization": "Bearer xai-nope-nope"}
        )
    assert response.status_code == 400
    assert response.json()["error"].startswith("Incorrect API key provided: xa***pe.")


@pytest.mark.parametrize(("style", "code"), [("grpc", "Some requested entity was not found"),
                                             ("kebab", "not-found"), ("status", "404")])  # fmt: skip
async def test_code_styles(fake_xai: FakeXAI, raw: httpx.AsyncClient, style: str, code: str) -> None:
    fake_xai.code_style = style  # type: ignore[assignment]
    response = await raw.get("/models/grok-nope")
    assert response.status_code == 404
    assert response.json()["code"] == code


async def test_stream_framing(fake_xai: FakeXAI, raw: httpx.AsyncClient) -> None:
    fake_xai.queue_reply(ScriptedReply(text="Oi there", reasoning="First", chunk_chars=4))
    body = chat(stream=True, stream_options={"include_usage": True})
    response = await raw.post("/chat/completions", json=body)
    assert response.headers["content-type"].startswith("text/event-stream")
    text = response.text
    assert text.endswith("data: [DONE]\n\n")
    events = text.split("\n\n")[:-1]
    assert all(e.startswith("data: ") and "\n" not in e for e in events)
    chunks = [json.loads(e[6:]) for e in events[:-1]]
    assert all(
        e[6:] == json.dumps(c, separators=(",", ":"), ensure_ascii=False)
        for e, c in zip(events, chunks, strict=False)
    )
    assert len({c["id"] for c in chunks}) == 1
    assert all(c["system_fingerprint"] == fake_xai.fingerprint for c in chunks)
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    assert [("role" in d) for d in deltas] == [True] + [False] * (len(deltas) - 1)
    assert deltas[0]["reasoning_content"] == "Firs"
    assert [d.get("content") for d in deltas if "content" in d] == ["Oi t", "here"]
    finishes = [c["choices"][0].get("finish_reason") for c in chunks if c["choices"]]
    assert "finish_reason" not in chunks[0]["choices"][0]
    assert finishes == [None] * (len(finishes) - 1) + ["stop"]
    assert chunks[-2]["choices"][0]["delta"] == {}
    assert chunks[-1]["choices"] == []
    assert [("usage" in c) for c in chunks] == [False] * (len(chunks) - 1) + [True]
    usage = chunks[-1]["usage"]
    assert usage["total_tokens"] == (
        usage["prompt_tokens"]
        + usage["completion_tokens"]
        + usage["completion_tokens_details"]["reasoning_tokens"]
    )


async def test_stream_without_include_usage_has_no_usage(raw: httpx.AsyncClient) -> None:
    response = await raw.post("/chat/completions", json=chat(stream=True))
    assert '"usage"' not in response.text
    assert response.text.endswith("data: [DONE]\n\n")


async def test_comments_and_empty_deltas(fake_xai: FakeXAI, raw: httpx.AsyncClient) -> None:
    fake_xai.queue_reply(ScriptedReply(text="abc", empty_deltas=3, comments=2))
    text = (await raw.post("/chat/completions", json=chat(stream=True))).text
    assert text.count(": keep-alive\n\n") == 2
    assert text.count('"delta":{}') == 3 + 1  # the empty ones and the finish chunk


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        (chat(stop=["\n"]), 400, "stop"),
        (chat(presence_penalty=1), 400, "presencePenalty"),
        (chat(model="grok-4-0709", reasoning_effort="low"), 400, "reasoningEffort"),
        (chat(reasoning_effort="medium"), 400, "reasoning effort"),
        (chat(search_parameters={"mode": "auto"}), 410, "Live search is deprecated"),
        (chat(messages=[]), 400, "empty"),
        ({"messages": []}, 422, "model"),
        (chat(model="grok-beta"), 404, "does not exist"),
    ],
)
async def test_chat_refusals(
    raw: httpx.AsyncClient, body: dict[str, Any], status: int, fragment: str
) -> None:
    response = await raw.post("/chat/completions", json=body)
    assert response.status_code == status
    assert fragment in response.json()["error"]


async def test_grok3_takes_stop(raw: httpx.AsyncClient) -> None:
    response = await raw.post("/chat/completions", json=chat(model="grok-3", stop=["\n"]))
    assert response.status_code == 200
    assert response.json()["choices"][0]["message"]["content"] == "Echo: hi"


@pytest.mark.parametrize(
    ("extra", "status", "fragment"),
    [
        ({"size": "1024x1024"}, 400, "Argument not supported: size"),
        ({"n": 11}, 400, "between 1 and 10"),
        ({"n": 0}, 400, "between 1 and 10"),
    ],
)
async def test_image_refusals(
    raw: httpx.AsyncClient, extra: dict[str, Any], status: int, fragment: str
) -> None:
    response = await raw.post(
        "/images/generations", json={"model": "grok-imagine-image", "prompt": "p", **extra}
    )
    assert response.status_code == status
    assert fragment in response.json()["error"]


async def test_images_default_to_urls(raw: httpx.AsyncClient) -> None:
    body = (
        await raw.post("/images/generations", json={"model": "grok-imagine-image", "prompt": "p", "n": 2})
    ).json()
    assert [set(item) for item in body["data"]] == [{"url", "revised_prompt"}] * 2
    assert body["usage"] == {"cost_in_usd_ticks": 400_000_000}


async def test_listing_endpoints(raw: httpx.AsyncClient) -> None:
    assert (await raw.get("/models/grok-4")).json()["id"] == "grok-4-0709"
    assert (await raw.get("/language-models/grok-3")).json()["prompt_text_token_price"] == 30000
    assert (await raw.get("/image-generation-models/grok-2-image")).json()["image_price"] == 7
    tokens = (await raw.post("/tokenize-text", json={"text": "Hello world!", "model": "grok-3"})).json()
    assert [t["string_token"] for t in tokens["token_ids"]] == ["Hello", " world", "!"]
    assert tokens["token_ids"][0]["token_bytes"] == list(b"Hello")


async def test_unknown_route_is_xai_404(raw: httpx.AsyncClient) -> None:
    response = await raw.get("/nothing-here")
    assert response.status_code == 404
    assert response.json()["error"].startswith("No handler found on route.")


async def test_requests_are_recorded(fake_xai: FakeXAI, raw: httpx.AsyncClient) -> None:
    await raw.post("/chat/completions", json=chat(), headers={"X-Grok-Conv-Id": "c-1"})
    recorded = fake_xai.requests[-1]
    assert (recorded.method, recorded.path) == ("POST", "/v1/chat/completions")
    assert recorded.headers["x-grok-conv-id"] == "c-1"
    assert recorded.json == chat()


async def test_send_log_keys_streams_by_conv_id_or_by_an_override(
    fake_xai: FakeXAI, raw: httpx.AsyncClient
) -> None:
    """Benchmarks time each stream's writes: under its x-grok-conv-id, or under what an overriding
    `send_log_key` reads from the body (for bots that send no such header)."""
    fake_xai.send_log = {}
    fake_xai.default_reply = ScriptedReply(text="Oi there", chunk_chars=4, tokens_per_second=1000)
    await raw.post("/chat/completions", json=chat(stream=True), headers={"X-Grok-Conv-Id": "c-1"})
    fake_xai.send_log_key = lambda request, body: body["messages"][-1]["content"]  # type: ignore[method-assign]
    await raw.post("/chat/completions", json=chat(stream=True), headers={"X-Grok-Conv-Id": "c-2"})
    assert set(fake_xai.send_log) == {"c-1", "hi"}
    assert [chars for _, chars in fake_xai.send_log["hi"]] == [4, 8]
    assert fake_xai.send_log["c-1"] == sorted(fake_xai.send_log["c-1"])


async def test_tpm_limit(fake_xai: FakeXAI, raw: httpx.AsyncClient) -> None:
    fake_xai.tpm_limit = 50
    fake_xai.rate_limit_retry_after = 7
    assert (await raw.post("/chat/completions", json=chat())).status_code == 200
    big = chat(messages=[{"role": "user", "content": "x" * 400}])
    response = await raw.post("/chat/completions", json=big)
    assert response.status_code == 429
    assert response.headers["retry-after"] == "7"
    assert "Tokens per Minute" in response.json()["error"]
