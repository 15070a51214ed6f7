"""The fake's /v1/responses read raw: framing, event order, keep-alives and the reference's errors
(shared/reference/xai-agent-tools.md §3, §5)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.fakes.xai import FakeXAI, ScriptedCitation, ScriptedResponse, ScriptedTool, fake_xai  # noqa: F401


def body(**extra: Any) -> dict[str, Any]:
    return {"model": "grok-4.3", "input": [{"role": "user", "content": "hi"}], "store": False, **extra}


async def streamed(raw: httpx.AsyncClient, **extra: Any) -> bytes:
    response = await raw.post("/responses", json=body(stream=True, **extra))
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/event-stream"
    return response.content


def events(stream: bytes) -> list[dict[str, Any]]:
    return [json.loads(line[6:]) for line in stream.split(b"\n") if line.startswith(b"data: {")]


async def test_data_only_framing_in_sequence_without_done(fake_xai: FakeXAI, raw: httpx.AsyncClient) -> None:
    tools = (ScriptedTool("web", "q", ("https://a.example/",)),)
    fake_xai.queue_response(ScriptedResponse(text="Hello there", reasoning="hm", tools=tools))
    stream = await streamed(raw, tools=[{"type": "web_search"}])
    assert all(line.startswith(b"data: {") for line in stream.split(b"\n\n") if line)
    assert b"[DONE]" not in stream and b"event:" not in stream
    seen = events(stream)
    assert [e["sequence_number"] for e in seen] == list(range(len(seen)))
    assert all(next(iter(e)) == "sequence_number" for e in seen)  # the first key, as recorded
    kinds = [e["type"] for e in seen]
    assert kinds[:2] == ["response.created", "response.in_progress"] and kinds[-1] == "response.completed"
    assert kinds.index("response.reasoning_summary_text.delta") < kinds.index(
        "response.web_search_call.searching"
    )
    assert kinds.index("response.output_item.done") < kinds.index("response.output_text.delta")


async def test_event_lines_and_done(fake_xai: FakeXAI, raw: httpx.AsyncClient) -> None:
    fake_xai.queue_response(ScriptedResponse(text="Hi", event_lines=True, done_marker=True))
    stream = await streamed(raw)
    blocks = [b for b in stream.split(b"\n\n") if b]
    assert blocks[-1] == b"data: [DONE]"
    for block in blocks[:-1]:
        event, data = block.split(b"\n")
        assert event == b"event: " + json.loads(data[6:])["type"].encode()


async def test_annotations_come_after_the_last_delta(fake_xai: FakeXAI, raw: httpx.AsyncClient) -> None:
    text = "See [[1]](https://x.ai/)."
    cite = (ScriptedCitation("https://x.ai/", marker=True), ScriptedCitation("https://docs.x.ai/"))
    fake_xai.queue_response(ScriptedResponse(text=text, citations=cite))
    kinds = [(e["type"], e) for e in events(await streamed(raw))]
    names = [k for k, _ in kinds]
    last_delta = max(i for i, k in enumerate(names) if k == "response.output_text.delta")
    notes = [i for i, k in enumerate(names) if k == "response.output_text.annotation.added"]
    assert notes == [last_delta + 1, last_delta + 2]
    assert names[notes[-1] + 1] == "response.output_text.done"
    first, second = (kinds[i][1]["annotation"] for i in notes)
    assert text[first["start_index"] : first["end_index"]] == "[[1]](https://x.ai/)"
    assert (second["start_index"], second["end_index"], second["title"]) == (0, 0, "https://docs.x.ai/")


async def test_keep_alive_comments_while_a_tool_runs(fake_xai: FakeXAI, raw: httpx.AsyncClient) -> None:
    fake_xai.time_scale = 0.001
    fake_xai.queue_response(ScriptedResponse(tools=(ScriptedTool("x", "q", seconds=46),)))
    stream = await streamed(raw, tools=[{"type": "x_search"}])
    before, _, after = stream.partition(b"response.output_item.done")
    assert before.count(b": keepalive\n\n") == 3 and b": keepalive" not in after  # at 15, 30 and 45 s
    fake_xai.queue_response(
        ScriptedResponse(tools=(ScriptedTool("x", "q", seconds=46),), keepalive_events=True)
    )
    kinds = [e["type"] for e in events(await streamed(raw, tools=[{"type": "x_search"}]))]
    assert kinds.count("keepalive") == 3


async def test_the_2026_items_and_the_union_of_sources(fake_xai: FakeXAI, raw: httpx.AsyncClient) -> None:
    tools = (ScriptedTool("web", "a", ("https://a.example/",)), ScriptedTool("web", "b", ("https://b.example/",)),
             ScriptedTool("x", "from:xai"), ScriptedTool("code", "print(1)", output="1\n"))  # fmt: skip
    fake_xai.queue_response(ScriptedResponse(tools=tools))
    seen = events(await streamed(raw))
    done = [e["item"] for e in seen if e["type"] == "response.output_item.done"]
    web, x, code = done[0], done[2], done[3]
    assert web["id"].startswith("ws_") and web["action"] == {
        "type": "search", "query": "a", "sources": [{"type": "url", "url": "https://a.example/"}]
    }  # fmt: skip
    assert (x["type"], x["name"], json.loads(x["input"])["query"]) == (
        "custom_tool_call",
        "x_keyword_search",
        "from:xai",
    )
    assert (code["type"], code["code"], code["outputs"]) == (
        "code_interpreter_call",
        "print(1)",
        [{"type": "logs", "logs": "1\n"}],
    )
    final = seen[-1]["response"]
    unioned = [i["action"]["sources"] for i in final["output"] if i["type"] == "web_search_call"]
    assert (
        unioned
        == [[{"type": "url", "url": "https://a.example/"}, {"type": "url", "url": "https://b.example/"}]] * 2
    )
    details = final["usage"]["server_side_tool_usage_details"]
    assert (details["web_search_calls"], details["x_search_calls"], details["code_interpreter_calls"]) == (
        2,
        1,
        1,
    )
    assert isinstance(final["usage"]["cost_in_usd_ticks"], int)


async def test_a_whole_response(fake_xai: FakeXAI, raw: httpx.AsyncClient) -> None:
    fake_xai.queue_response(ScriptedResponse(text="Whole."))
    response = (await raw.post("/responses", json=body())).json()
    assert (response["object"], response["status"], response["store"]) == ("response", "completed", False)
    assert len(response["id"]) == 36 and response["output"][-1]["content"][0]["text"] == "Whole."
    assert response["metadata"]["system_fingerprint"] == fake_xai.fingerprint


def web(**fields: Any) -> dict[str, Any]:
    return {"type": "web_search", **fields}


@pytest.mark.parametrize(
    ("extra", "status", "says"),
    [
        ({"search_parameters": {"mode": "on"}}, 410, "Live search is deprecated"),
        ({"tool_choice": "auto"}, 400, "A tool_choice was set on the request but no tools were specified"),
        ({"tools": [{"type": "web_search"}], "tool_choice": {"type": "web_search"}}, 422, "ModelToolChoice"),
        ({"instructions": "x", "previous_response_id": "y"}, 400, "instructions and previous_response_id"),
        ({"tools": [web(allowed_domains=["a.b"], excluded_domains=["c.d"])]}, 400, "together"),
        ({"tools": [web(allowed_domains=[f"d{n}.b" for n in range(6)])]}, 400, "maximum of 5"),
        ({"tools": [{"type": "x_search", "allowed_x_handles": [f"h{n}" for n in range(21)]}]}, 400, "of 20"),
        ({"tools": [{"type": "code_interpreter", "container": {"type": "auto"}}]}, 400, "container"),
        ({"tools": [{"type": "web_search", "search_context_size": "high"}]}, 400, "search_context_size"),
        ({"presence_penalty": 1}, 400, "does not support parameter presencePenalty"),
        ({"model": "grok-nope"}, 404, "does not exist"),
        ({"reasoning": {"effort": "ultra"}}, 400, "reasoning"),
    ],
)  # fmt: skip
async def test_the_references_errors(
    raw: httpx.AsyncClient, extra: dict[str, Any], status: int, says: str
) -> None:
    response = await raw.post("/responses", json=body(**extra))
    assert response.status_code == status
    assert set(response.json()) == {"code", "error"} and says in response.json()["error"]


async def test_an_empty_request_is_refused_and_without_the_route_it_is_404(
    fake_xai: FakeXAI, raw: httpx.AsyncClient
) -> None:
    response = await raw.post("/responses", json={})
    assert response.status_code == 422 and "missing field `model`" in response.json()["error"]
    fake_xai.serve_responses = False
    response = await raw.post("/responses", json=body())
    assert response.status_code == 404 and "No handler found on route" in response.json()["error"]


async def test_an_error_event_after_a_200(fake_xai: FakeXAI, raw: httpx.AsyncClient) -> None:
    fake_xai.queue_response(ScriptedResponse(stream_error="Invalid arguments passed to the model."))
    message = "Invalid arguments passed to the model."
    assert events(await streamed(raw)) == [
        {"sequence_number": 0, "type": "error", "code": None, "message": message, "param": None}
    ]
