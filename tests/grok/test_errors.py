"""HTTP errors mapped by status, retries with backoff and Retry-After, credit texts, redaction."""

from __future__ import annotations

import socket

import httpx
import pytest

from bot.errors import (
    GrokAuthFailed,
    GrokError,
    GrokModerated,
    GrokRateLimited,
    GrokRejected,
    GrokUnavailable,
)
from bot.grok import GrokClient, RetryPolicy
from bot.grok.net import AsyncioTransport
from tests.fakes.xai import FakeXAI, ScriptedReply, fake_xai, grok  # noqa: F401
from tests.grok import Sleeps, ask, client


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, GrokRejected),
        (404, GrokRejected),
        (410, GrokRejected),
        (422, GrokRejected),
        (401, GrokAuthFailed),
        (403, GrokAuthFailed),
        (500, GrokUnavailable),
        (502, GrokUnavailable),
    ],
)
async def test_status_maps_to_error(
    fake_xai: FakeXAI, grok: GrokClient, status: int, error: type[GrokError]
) -> None:
    fake_xai.fail_next(status, times=10, body={"code": "some code", "error": f"reason {status}"})
    with pytest.raises(error) as caught:
        await grok.complete(ask())
    assert type(caught.value) is error
    assert caught.value.status == status
    assert f"reason {status}" in str(caught.value)
    retried = status >= 500
    assert len(fake_xai.chat_requests()) == (4 if retried else 1)


async def test_wrong_key_is_auth_failed_though_400(fake_xai: FakeXAI) -> None:
    async with httpx.AsyncClient(transport=AsyncioTransport()) as http:
        grok = GrokClient(http, api_key="xai-wrong-key-0123456789", base_url=fake_xai.base_url)
        with pytest.raises(GrokAuthFailed) as caught:
            await grok.list_models()
    assert caught.value.status == 400
    assert "Incorrect API key" in str(caught.value)
    assert "0123456789" not in str(caught.value)


async def test_real_rejections_from_the_fake(fake_xai: FakeXAI, grok: GrokClient) -> None:
    with pytest.raises(GrokRejected) as unknown:
        await grok.complete(ask(model="grok-nope"))
    assert unknown.value.status == 404
    with pytest.raises(GrokRejected) as too_long:
        await grok.complete(ask("word " * 120_000))
    assert too_long.value.status == 400
    assert "maximum prompt length" in str(too_long.value)


async def test_nested_and_non_json_error_bodies(fake_xai: FakeXAI, grok: GrokClient) -> None:
    fake_xai.fail_next(400, body={"error": {"message": "nested says no", "type": "invalid"}})
    with pytest.raises(GrokRejected, match="nested says no"):
        await grok.complete(ask())
    fake_xai.fail_next(502, times=4, body="<html>Bad Gateway</html>")
    with pytest.raises(GrokUnavailable, match="Bad Gateway"):
        await grok.complete(ask())


@pytest.mark.parametrize("status", [400, 401, 403, 429, 500])
async def test_api_key_never_in_messages(fake_xai: FakeXAI, grok: GrokClient, status: int) -> None:
    echo = f"Bad request for key {fake_xai.api_key} (also xai-AbCdEf0123456789XyZ) Bearer {fake_xai.api_key}"
    fake_xai.fail_next(status, times=10, body={"code": "x", "error": echo})
    with pytest.raises(GrokError) as caught:
        await grok.complete(ask())
    message = str(caught.value)
    assert "Bad request for key" in message
    assert fake_xai.api_key not in message
    assert "xai-AbCdEf0123456789XyZ" not in message
    assert "xai-***" in message


async def test_moderation_400_is_moderated(fake_xai: FakeXAI, grok: GrokClient) -> None:
    fake_xai.fail_next(
        400,
        body={
            "code": "Client specified an invalid argument",
            "error": "Prompt rejected by content moderation",
        },
    )
    with pytest.raises(GrokModerated):
        await grok.complete(ask())


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
async def test_transient_statuses_are_retried(fake_xai: FakeXAI, grok: GrokClient, status: int) -> None:
    fake_xai.fail_next(status, times=2)
    completion = await grok.complete(ask("retry me"))
    assert completion.text == "Echo: retry me"
    assert len(fake_xai.chat_requests()) == 3


async def test_rate_limit_gives_up_after_the_attempts(fake_xai: FakeXAI, grok: GrokClient) -> None:
    fake_xai.fail_next(429, times=10)
    with pytest.raises(GrokRateLimited):
        await grok.complete(ask())
    assert len(fake_xai.chat_requests()) == 4


@pytest.mark.parametrize("status", [429, 403])
async def test_credit_texts_are_auth_failures_not_retried(
    fake_xai: FakeXAI, grok: GrokClient, status: int
) -> None:
    fake_xai.credits_exhausted = status
    with pytest.raises(GrokAuthFailed) as caught:
        await grok.complete(ask())
    assert caught.value.status == status
    assert "credits" in str(caught.value)
    assert "spending limit" in str(caught.value)
    assert len(fake_xai.chat_requests()) == 1


async def test_retry_after_is_honoured(fake_xai: FakeXAI) -> None:
    sleeps = Sleeps()
    fake_xai.fail_next(429, retry_after=2.5)
    fake_xai.fail_next(503, retry_after=1)
    async with httpx.AsyncClient(transport=AsyncioTransport()) as http:
        grok = client(fake_xai, http, retry=RetryPolicy(), sleep=sleeps)
        await grok.complete(ask())
    assert sleeps.delays == [2.5, 1.0]


async def test_too_long_retry_after_goes_up(fake_xai: FakeXAI) -> None:
    sleeps = Sleeps()
    fake_xai.fail_next(429, retry_after=600)
    async with httpx.AsyncClient(transport=AsyncioTransport()) as http:
        grok = client(fake_xai, http, retry=RetryPolicy(max_retry_after=60), sleep=sleeps)
        with pytest.raises(GrokRateLimited) as caught:
            await grok.complete(ask())
    assert caught.value.retry_after == 600
    assert sleeps.delays == []


async def test_backoff_without_retry_after_is_jittered_exponential(fake_xai: FakeXAI) -> None:
    sleeps = Sleeps()
    fake_xai.fail_next(503, times=3)
    async with httpx.AsyncClient(transport=AsyncioTransport()) as http:
        grok = client(fake_xai, http, retry=RetryPolicy(attempts=4, base=0.5, cap=20), sleep=sleeps)
        await grok.complete(ask())
    assert len(sleeps.delays) == 3
    for n, delay in enumerate(sleeps.delays):
        assert 0 <= delay <= 0.5 * 2**n


def test_retry_policy_arithmetic() -> None:
    policy = RetryPolicy(attempts=4, base=0.5, cap=3)
    top = [policy.delay(n, rand=lambda: 1.0) for n in range(1, 5)]
    assert top == [0.5, 1.0, 2.0, None]
    assert RetryPolicy(attempts=10, cap=3).delay(5, rand=lambda: 1.0) == 3
    assert policy.delay(1, rand=lambda: 0.0) == 0.0
    assert policy.delay(1, retry_after=7) == 7
    assert policy.delay(4, retry_after=1) is None


async def test_connection_errors_are_retried_then_unavailable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sleeps = Sleeps()
    async with httpx.AsyncClient(transport=AsyncioTransport()) as http:
        grok = GrokClient(http, api_key="xai-k", base_url=f"http://127.0.0.1:{port}/v1", sleep=sleeps)
        with pytest.raises(GrokUnavailable, match="ConnectError"):
            await grok.complete(ask())
        with pytest.raises(GrokUnavailable):
            async for _event in grok.stream(ask()):
                pass
    assert len(sleeps.delays) == 6  # 3 retries each


async def test_scripted_error_reply_is_consumed_once(fake_xai: FakeXAI, grok: GrokClient) -> None:
    fake_xai.queue_reply(ScriptedReply(status=503, retry_after=0))
    fake_xai.queue_reply(ScriptedReply(text="second"))
    assert (await grok.complete(ask())).text == "second"
    assert len(fake_xai.chat_requests()) == 2
