"""Responses API requests on the wire (store:false, input items, tools, what is never sent), whole
answers, errors mapped onto bot.errors, tool limits checked before sending, and the probe."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from bot.errors import (
    BadInput,
    GrokAuthFailed,
    GrokOutOfCredits,
    GrokRateLimited,
    GrokRejected,
    GrokUnavailable,
)
from bot.grok import (
    ChatMessage,
    ChatRequest,
    GrokClient,
    ImagePart,
    ResponseRequest,
    TextPart,
    Tools,
    WebSearch,
    XSearch,
    image_part,
)
from bot.grok.net import AsyncioTransport
from bot.grok.tools import MAX_X_HANDLES
from tests.fakes.xai import (
    FakeXAI,
    ScriptedCitation,
    ScriptedResponse,
    ScriptedTool,
    fake_xai,  # noqa: F401
    grok,  # noqa: F401
    tiny_png,
)
from tests.grok import ask_response, client

NEVER_SENT = (
    "tool_choice",
    "search_parameters",
    "instructions",
    "previous_response_id",
    "background",
    "metadata",
    "truncation",
    "presence_penalty",
    "frequency_penalty",
    "parallel_tool_calls",
)


async def sent(fake: FakeXAI, grok: GrokClient, request: ResponseRequest) -> dict[str, Any]:
    await grok.respond(request)
    body: dict[str, Any] = fake.responses_requests()[-1].json
    return body


async def test_a_plain_request_sends_no_tools_and_stores_nothing(fake_xai: FakeXAI, grok: GrokClient) -> None:
    body = await sent(fake_xai, grok, ask_response("hi"))
    assert body == {"model": "grok-4.3", "input": [{"role": "user", "content": "hi"}], "store": False}
    assert fake_xai.responses_requests()[-1].headers["authorization"] == f"Bearer {fake_xai.api_key}"


async def test_the_conversation_and_options_on_the_wire(fake_xai: FakeXAI, grok: GrokClient) -> None:
    image = image_part(tiny_png(), detail="high")
    chat = ChatRequest(
        model="grok-4.3",
        messages=(ChatMessage("system", "Be brief."), ChatMessage("user", "[ann] hi"),
                  ChatMessage("assistant", "Hello."), ChatMessage("user", (TextPart("and this?"), image))),
        reasoning_effort="high", temperature=0.5, user="hash-of-user", conv_id="conv-1",
    )  # fmt: skip
    body = await sent(
        fake_xai, grok, ResponseRequest.of(chat, tools=Tools(web=WebSearch()), max_output_tokens=900)
    )
    assert body["input"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "[ann] hi"},
        {"role": "assistant", "content": "Hello."},
        {"role": "user", "content": [{"type": "input_text", "text": "and this?"},
                                     {"type": "input_image", "image_url": image.url, "detail": "high"}]},
    ]  # fmt: skip
    assert body["store"] is False
    assert body["max_output_tokens"] == 900
    assert body["reasoning"] == {"effort": "high"}
    assert (body["temperature"], body["user"], body["prompt_cache_key"]) == (0.5, "hash-of-user", "conv-1")
    assert body["tools"] == [
        {"type": "web_search", "enable_image_understanding": True}
    ]  # the turn has an image
    assert body["include"] == ["web_search_call.action.sources"]
    assert not set(NEVER_SENT) & set(body)


async def test_tools_with_their_filters(fake_xai: FakeXAI, grok: GrokClient) -> None:
    tools = Tools(
        web=WebSearch(excluded_domains=("https://Spam.example/", "junk.example", "junk.example")),
        x=XSearch(allowed_handles=("@xai", "elonmusk", "XAI")),
        code=True,
    )
    body = await sent(fake_xai, grok, ask_response(tools=tools, max_turns=3))
    assert body["tools"] == [
        {"type": "web_search", "excluded_domains": ["spam.example", "junk.example"]},
        {"type": "x_search", "allowed_x_handles": ["xai", "elonmusk"]},
        {"type": "code_interpreter"},  # no container
    ]
    assert body["include"] == ["web_search_call.action.sources", "code_interpreter_call.outputs"]
    assert body["max_turns"] == 3
    assert not set(NEVER_SENT) & set(body)
    for tool in body["tools"]:
        assert not {"search_context_size", "user_location", "external_web_access", "container"} & set(tool)


async def test_no_images_no_image_understanding_and_images_only_count_in_the_last_turn(
    fake_xai: FakeXAI, grok: GrokClient
) -> None:
    old_image = ChatMessage("user", (TextPart("earlier"), ImagePart("data:image/png;base64,AAAA")))
    request = ResponseRequest("grok-4.3", (old_image, ChatMessage("user", "now")), tools=Tools(x=XSearch()))
    body = await sent(fake_xai, grok, request)
    assert body["tools"] == [{"type": "x_search"}]
    assert "include" not in body


async def test_reasoning_effort_only_to_models_that_take_it(fake_xai: FakeXAI, grok: GrokClient) -> None:
    body = await sent(fake_xai, grok, ask_response(model="grok-4.20-0309-reasoning", reasoning_effort="high"))
    assert "reasoning" not in body
    body = await sent(fake_xai, grok, ask_response(model="grok-4.7", reasoning_effort="low"))
    assert body["reasoning"] == {"effort": "low"}


async def test_a_refused_reasoning_effort_is_dropped_and_sent_once_more(fake_xai: FakeXAI) -> None:
    async with httpx.AsyncClient(transport=AsyncioTransport()) as http:
        grok = client(fake_xai, http, reasoning_effort_models=("grok-4.20*",))
        completion = await grok.respond(
            ask_response(model="grok-4.20-0309-reasoning", reasoning_effort="low")
        )
    assert completion.text == "Echo: hello there"
    first, second = (r.json for r in fake_xai.responses_requests())
    assert first["reasoning"] == {"effort": "low"} and "reasoning" not in second


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (lambda: WebSearch(allowed_domains=tuple(f"d{n}.example" for n in range(6))), "at most 5"),
        (lambda: WebSearch(allowed_domains=("a.example",), excluded_domains=("b.example",)), "not both"),
        (lambda: WebSearch(allowed_domains=("not a domain",)), "not a web domain"),
        (lambda: XSearch(allowed_handles=tuple(f"h{n}" for n in range(MAX_X_HANDLES + 1))), "at most 20"),
        (lambda: XSearch(allowed_handles=("@bad-handle!",)), "not an X handle"),
    ],
)
def test_tool_limits_are_checked_before_anything_is_sent(make: Any, says: str) -> None:
    with pytest.raises(BadInput, match=says):
        make()


async def test_a_whole_answer_with_tools_citations_and_usage(fake_xai: FakeXAI, grok: GrokClient) -> None:
    fake_xai.queue_response(
        ScriptedResponse(text="See [[1]](https://x.ai/).", reasoning="Hmm.",
                         tools=(ScriptedTool("web", "xai", ("https://x.ai/", "https://x.ai/grok")),
                                ScriptedTool("x", "from:xai", posts=5)),
                         citations=(ScriptedCitation("https://x.ai/", title="xAI", marker=True),))
    )  # fmt: skip
    completion = await grok.respond(ask_response(tools=Tools(web=WebSearch(), x=XSearch())))
    assert (completion.text, completion.reasoning, completion.finish_reason) == (
        "See [[1]](https://x.ai/).",
        "Hmm.",
        "stop",
    )
    assert [(c.kind, c.query, c.status) for c in completion.tool_calls] == [
        ("web", "xai", "completed"), ("x", "from:xai", "completed")
    ]  # fmt: skip
    assert completion.tool_calls[0].sources == ("https://x.ai/", "https://x.ai/grok")
    assert [(s.url, s.title) for s in completion.sources] == [("https://x.ai/", "xAI")]
    assert completion.citations[0].start == 4
    usage = completion.usage
    assert usage is not None and usage.cost_ticks is not None
    assert (usage.tools.web_search_calls, usage.tools.x_posts_fetched) == (1, 5)
    assert grok.prices.cost_ticks(completion.model, usage) == usage.cost_ticks
    assert "stream" not in fake_xai.responses_requests()[-1].json


CREDITS = "team has either used all available credits or reached its monthly spending limit"
NO_TOOLS = "Invalid request content: A tool_choice was set on the request but no tools were specified."
FORCED = (
    "Failed to deserialize the JSON body into the target type: tool_choice: data did not match any "
    "variant of untagged enum ModelToolChoice"
)
TOGETHER = "Argument not supported: instructions and previous_response_id together"
GONE = "Live search is deprecated. Please switch to the Agent Tools API"


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (410, {"code": "gone", "error": GONE}, GrokRejected),
        (400, {"code": "invalid-argument", "error": NO_TOOLS}, GrokRejected),
        (422, {"code": "Client specified an invalid argument", "error": FORCED}, GrokRejected),
        (400, {"code": "400", "error": TOGETHER}, GrokRejected),
        (
            429,
            {"code": "resource-exhausted", "error": "Too many requests for model grok-4.3."},
            GrokRateLimited,
        ),
        (503, {"code": "unavailable", "error": "The service is temporarily unavailable."}, GrokUnavailable),
    ],
)
async def test_the_references_errors_map_onto_the_error_tree(
    fake_xai: FakeXAI, grok: GrokClient, status: int, body: dict[str, str], error: type[Exception]
) -> None:
    fake_xai.fail_next(status, times=10, body=body)
    for call in (grok.respond(ask_response()), collect_stream(grok)):
        with pytest.raises(error) as caught:
            await call
        assert type(caught.value) is error
        assert body["error"][:40] in str(caught.value)
        assert caught.value.status == status  # type: ignore[attr-defined]


async def test_a_credits_refusal_is_out_of_credits_and_pauses_calls(
    fake_xai: FakeXAI, grok: GrokClient
) -> None:
    fake_xai.fail_next(403, times=10, body={"code": "permission-denied", "error": CREDITS})
    with pytest.raises(GrokOutOfCredits) as whole:
        await grok.respond(ask_response())
    assert CREDITS[:40] in str(whole.value) and whole.value.status == 403
    sent = len(fake_xai.responses_requests())
    with pytest.raises(GrokOutOfCredits, match="paused"):
        await collect_stream(grok)
    assert len(fake_xai.responses_requests()) == sent  # paused: xAI was not asked again
    later = grok.transport.clock() + 61
    grok.transport.clock = lambda: later
    with pytest.raises(GrokOutOfCredits) as streamed:
        await collect_stream(grok)
    assert CREDITS[:40] in str(streamed.value) and streamed.value.status == 403


async def collect_stream(grok: GrokClient) -> None:
    async for _ in grok.stream_response(ask_response()):
        pass


async def test_the_fakes_own_rejections_reach_the_client(fake_xai: FakeXAI, grok: GrokClient) -> None:
    with pytest.raises(GrokRejected) as unknown:
        await grok.respond(ask_response(model="grok-nope"))
    assert unknown.value.status == 404
    with pytest.raises(GrokRejected) as too_long:
        await grok.respond(ask_response("word " * 120_000, model="grok-3"))
    assert too_long.value.status == 400 and "maximum prompt length" in str(too_long.value)
    fake_xai.credits_exhausted = 403
    with pytest.raises(GrokAuthFailed, match="credits"):
        await grok.respond(ask_response())


async def test_the_probe_tells_an_endpoint_without_the_responses_api(
    fake_xai: FakeXAI, grok: GrokClient
) -> None:
    assert await grok.serves_responses() is True
    assert fake_xai.responses_requests()[-1].json == {}  # refused before any model runs: nothing billed
    fake_xai.serve_responses = False
    assert await grok.serves_responses() is False
    fake_xai.serve_responses = True
    async with httpx.AsyncClient(transport=AsyncioTransport()) as http:
        wrong = GrokClient(http, api_key="xai-wrong-key-000000000", base_url=fake_xai.base_url)
        with pytest.raises(GrokAuthFailed):
            await wrong.serves_responses()
