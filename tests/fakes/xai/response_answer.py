"""One scripted /v1/responses answer, rendered as xAI renders it (agent tools reference §2-§3): the
response object, or its event stream with the 2026 item formats, keep-alives while tools run,
annotations after the last text delta, and usage with the server-side tools and their cost."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import time
import uuid
from typing import TYPE_CHECKING, Any

from aiohttp import web

from tests.fakes.xai.models import FakeModel, tokens
from tests.fakes.xai.scripts import Fault, ScriptedResponse, ScriptedTool

if TYPE_CHECKING:
    from tests.fakes.xai.server import FakeXAI

_compact = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
TOOL_TICKS = {"web": 50_000_000, "code": 50_000_000}  # per call; X search: per post
X_POST_TICKS = 50_000_000
X_NAMES = {"x": "x_keyword_search", "web": "web_search", "code": "code_execution"}
TOOL_ITEMS = ("web_search_call", "custom_tool_call", "code_interpreter_call")


class Pause:
    """A quiet stretch of the stream (a tool running): keep-alives only, for `seconds`, then until
    every one of `holds` is set."""

    def __init__(self, seconds: float, holds: tuple[asyncio.Event, ...] = ()) -> None:
        self.seconds = seconds
        self.holds = holds


class ResponseAnswer:
    def __init__(
        self, fake: FakeXAI, model: FakeModel, body: dict[str, Any], reply: ScriptedResponse, prompt: int
    ) -> None:
        self.fake, self.model, self.body, self.reply = fake, model, body, reply
        self.id = str(uuid.uuid4())
        self.created = int(fake.now())
        self.text = reply.text if reply.text is not None else "Echo: " + _last_user_text(body)
        self.prompt = reply.prompt_tokens if reply.prompt_tokens is not None else prompt
        self.seq = 0
        self.items: list[dict[str, Any]] = []  # the output items, done
        self.sources: list[str] = []  # every web source, for the union in response.completed

    # -- the response object ----------------------------------------------------------------

    def snapshot(self, status: str, *, output: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        body, done = self.body, status != "in_progress"
        effort = body.get("reasoning", {}).get("effort") if isinstance(body.get("reasoning"), dict) else None
        response: dict[str, Any] = {
            "created_at": self.created, "completed_at": int(self.fake.now()) if done else None,
            "id": self.id, "max_output_tokens": body.get("max_output_tokens"),
            "model": self.reply.model or self.model.id, "object": "response", "output": output or [],
            "parallel_tool_calls": True, "previous_response_id": None,
            "reasoning": {"effort": effort, "summary": None}, "temperature": body.get("temperature"),
            "text": {"format": {"type": "text"}}, "tool_choice": "auto", "tools": body.get("tools") or [],
            "top_p": None, "usage": self.usage() if done else None, "user": body.get("user"),
            "incomplete_details": {"reason": "max_output_tokens"} if status == "incomplete" else None,
            "status": status, "store": body.get("store", True),
            "metadata": {"system_fingerprint": self.fake.fingerprint}, "background": False,
            "service_tier": "default", "truncation": "disabled",
        }  # fmt: skip
        if status == "failed":
            response["error"] = {"code": "server_error", "message": "The model failed to respond."}
        return response

    def final(self) -> dict[str, Any]:
        """The whole response (non-streamed), or what response.completed carries."""
        return self.snapshot(self.reply.end, output=self.output())

    def output(self) -> list[dict[str, Any]]:
        items = [dict(item) for item in (self.items or self._all_items())]
        if self.reply.union_sources:
            union = [{"type": "url", "url": u} for u in dict.fromkeys(self.sources)]
            for item in items:
                if item.get("type") == "web_search_call" and item.get("action", {}).get("sources"):
                    item["action"] = {**item["action"], "sources": union}
        return items

    def _all_items(self) -> list[dict[str, Any]]:
        """The done items without streaming them (for a non-streamed answer)."""
        for _ in self.events():
            pass
        return self.items

    def usage(self) -> dict[str, Any]:
        reply, model = self.reply, self.model
        done = [t for t in reply.tools if t.status == "completed"]  # failed calls are not billed
        steps = 1 + len(reply.tools)
        prompt = self.prompt * steps  # input_tokens sums every agent step
        cached = min(self.fake.cached_tokens + self.prompt * (steps - 1), prompt)
        reasoning = tokens(reply.reasoning) or (24 if model.reasoning else 0)
        output = tokens(self.text) + reasoning
        web = sum(t.kind == "web" for t in done)
        x_calls = sum(t.kind == "x" for t in done)
        posts = sum(t.posts for t in done if t.kind == "x")
        code = sum(t.kind == "code" for t in done)
        usage: dict[str, Any] = {
            "input_tokens": prompt, "input_tokens_details": {"cached_tokens": cached},
            "output_tokens": output, "output_tokens_details": {"reasoning_tokens": reasoning},
            "total_tokens": prompt + output, "num_sources_used": 0,
            "num_server_side_tools_used": len(done) + x_calls * 2,
            "server_side_tool_usage_details": {
                "web_search_calls": web, "x_search_calls": x_calls, "code_interpreter_calls": code,
                "file_search_calls": 0, "mcp_calls": 0, "document_search_calls": 0,
                "x_posts_fetched": posts, "x_users_fetched": 0,
            },
            "context_details": {"input_tokens": self.prompt, "output_tokens": tokens(self.text)},
        }  # fmt: skip
        p, c, o = model.prices
        cost = (prompt - cached) * p + cached * c + output * o
        cost += (web + code) * TOOL_TICKS["web"] + posts * X_POST_TICKS
        if reply.cost_ticks is not None:
            usage["cost_in_usd_ticks"] = reply.cost_ticks
        elif self.fake.report_cost:
            usage["cost_in_usd_ticks"] = cost
        return usage

    # -- the events -------------------------------------------------------------------------

    def event(self, kind: str, **fields: Any) -> dict[str, Any]:
        event = {"sequence_number": self.seq, "type": kind, **fields}
        self.seq += 1
        return event

    def events(self) -> Any:
        """Every event dict of the stream, and a Pause where tools run; text deltas are marked
        by their type. The end event comes last."""
        reply = self.reply
        if reply.stream_error is not None and reply.error_after == 0:
            yield self.event("error", code=None, message=reply.stream_error, param=None)
            return
        yield self.event("response.created", response=self.snapshot("in_progress"))
        yield self.event("response.in_progress", response=self.snapshot("in_progress"))
        if reply.unknown_events:
            yield from self._unknown()
        if reply.reasoning:
            yield from self._reasoning(len(self.items))
        yield from self._tools()
        yield from self._message(len(self.items))
        if reply.stream_error is not None:
            return
        kind = {"completed": "response.completed", "incomplete": "response.incomplete"}
        end = kind.get(reply.end, "response.failed")
        yield self.event(end, response=self.snapshot(reply.end, output=self.output()))

    def _reasoning(self, index: int) -> Any:
        rid = f"rs_{self.id}"
        summary = self.reply.reasoning
        yield self._added({"id": rid, "summary": [], "type": "reasoning", "status": "in_progress"}, index)
        part = {"text": "", "type": "summary_text"}
        at = {"item_id": rid, "output_index": index, "summary_index": 0}
        yield self.event("response.reasoning_summary_part.added", **at, part=part)
        for piece in self._pieces(summary):
            yield self.event("response.reasoning_summary_text.delta", delta=piece, **at)
        yield self.event("response.reasoning_summary_text.done", **at, text=summary)
        yield self.event("response.reasoning_summary_part.done", **at, part={**part, "text": summary})
        item = {"id": rid, "summary": [{"text": summary, "type": "summary_text"}], "type": "reasoning"}
        item["status"] = "completed"
        if self.body.get("store") is False:  # as recorded with store:false: opaque, never to be kept
            item["encrypted_content"] = base64.b64encode(summary.encode()[::-1]).decode()
        yield self._done(item, index)

    def _tools(self) -> Any:
        tools = list(enumerate(self.reply.tools, start=len(self.items)))
        if not self.reply.parallel:
            for index, tool in tools:
                yield from self._tool_start(tool, index)
                yield Pause(tool.seconds, (tool.hold,) if tool.hold else ())
                yield from self._tool_end(tool, index)
            return
        for index, tool in tools:
            yield from self._tool_start(tool, index)
        yield Pause(
            max((t.seconds for _, t in tools), default=0.0), tuple(t.hold for _, t in tools if t.hold)
        )
        for index, tool in reversed(tools):  # they end out of order
            yield from self._tool_end(tool, index)

    def _tool_item(self, tool: ScriptedTool, index: int, *, done: bool) -> dict[str, Any]:
        name = tool.name or X_NAMES[tool.kind]
        status = tool.status if done else "in_progress"
        if tool.kind == "web":
            action = {"type": "search", "query": tool.query if done else "", "sources": []}
            if done:
                action["sources"] = [{"type": "url", "url": u} for u in tool.sources]
            return {"id": f"ws_{self.id}_call-{self._uid(index)}-{index}", "type": "web_search_call",
                    "status": status, "action": action}  # fmt: skip
        if tool.kind == "x":
            call_id = f"xs_call_{abs(hash((self.id, index))) % 10**8:08d}"
            query = _compact({"query": tool.query, "limit": tool.posts, "mode": "Latest"})
            ctc = f"ctc_{self.id}_{call_id}"
            return {"call_id": call_id, "input": query if done else "", "name": name,
                    "type": "custom_tool_call", "id": ctc, "status": status}  # fmt: skip
        outputs = [{"type": "logs", "logs": tool.output}] if done else []
        return {"id": f"ci_{self.id}_call-{self._uid(index)}-0", "type": "code_interpreter_call",
                "status": status, "code": tool.query if done else "", "outputs": outputs}  # fmt: skip

    def _uid(self, index: int) -> str:
        return str(uuid.UUID(int=(hash((self.id, index)) & (2**128 - 1)) | 1))

    def _tool_start(self, tool: ScriptedTool, index: int) -> Any:
        item = self._tool_item(tool, index, done=False)
        at = {"item_id": item["id"], "output_index": index}
        yield self._added(item, index)
        if tool.kind == "web":
            yield self.event("response.web_search_call.in_progress", **at)
            yield self.event("response.web_search_call.searching", **at)
        elif tool.kind == "x":
            query = self._tool_item(tool, index, done=True)["input"]
            yield self.event("response.custom_tool_call_input.delta", **at, delta=query)
            yield self.event("response.custom_tool_call_input.done", **at, input=query)
        else:
            yield self.event("response.code_interpreter_call.in_progress", **at)
            yield self.event("response.code_interpreter_call_code.delta", **at, delta=tool.query)
            yield self.event("response.code_interpreter_call_code.done", **at, code=tool.query)
            yield self.event("response.code_interpreter_call.interpreting", **at)

    def _tool_end(self, tool: ScriptedTool, index: int) -> Any:
        item = self._tool_item(tool, index, done=True)
        at = {"item_id": item["id"], "output_index": index}
        if tool.kind == "web":
            yield self.event("response.web_search_call.completed", **at)
            self.sources.extend(tool.sources)
        elif tool.kind == "code":
            yield self.event("response.code_interpreter_call.completed", **at)
        yield self._done(item, index)

    def _message(self, index: int) -> Any:
        mid = f"msg_{self.id}"
        yield self._added({"content": [], "id": mid, "role": "assistant", "type": "message",
                           "status": "in_progress"}, index)  # fmt: skip
        at = {"content_index": 0, "item_id": mid, "output_index": index}
        part = {"type": "output_text", "text": "", "logprobs": [], "annotations": []}
        yield self.event("response.content_part.added", **at, part=part)
        for number, piece in enumerate(self._pieces(self.text)):
            if self.reply.stream_error is not None and number == self.reply.error_after:
                yield self.event("error", code=None, message=self.reply.stream_error, param=None)
                return
            yield self.event("response.output_text.delta", **at, delta=piece, logprobs=[])
        annotations = self.annotations()
        for number, annotation in enumerate(annotations):  # after the last delta, as recorded
            yield self.event("response.output_text.annotation.added", annotation=annotation,
                             annotation_index=number, **at)  # fmt: skip
        yield self.event("response.output_text.done", **at, text=self.text, logprobs=[])
        whole = {**part, "text": self.text, "annotations": annotations}
        yield self.event("response.content_part.done", **at, part=whole)
        yield self._done({"content": [whole], "id": mid, "role": "assistant", "type": "message",
                          "status": "completed"}, index)  # fmt: skip

    def annotations(self) -> list[dict[str, Any]]:
        numbers = {u: n for n, u in enumerate(dict.fromkeys(c.url for c in self.reply.citations), 1)}
        out = []
        for c in self.reply.citations:
            start = end = 0
            if c.marker:
                marker = f"[[{numbers[c.url]}]]({c.url})"
                found = self.text.find(marker)
                if found >= 0:
                    start, end = found, found + len(marker)
            out.append({"type": "url_citation", "url": c.url, "start_index": start, "end_index": end,
                        "title": c.title if c.title is not None else c.url})  # fmt: skip
        return out

    def _unknown(self) -> Any:
        """Types no client knows yet: an event, an item, and OpenAI's keepalive event."""
        yield self.event("response.future_feature.delta", item_id="ff_1", output_index=0, delta="?")
        item = {"id": f"ig_{self.id}", "type": "image_generation_call", "status": "in_progress"}
        yield self._added(item, len(self.items))
        yield self._done({**item, "status": "completed", "result": ""}, len(self.items))
        yield self.event("keepalive")

    def _added(self, item: dict[str, Any], index: int) -> dict[str, Any]:
        return self.event("response.output_item.added", item=item, output_index=index)

    def _done(self, item: dict[str, Any], index: int) -> dict[str, Any]:
        if item.get("type") != "image_generation_call":
            self.items.append(item)
        return self.event("response.output_item.done", item=item, output_index=index)

    def _pieces(self, text: str) -> list[str]:
        step = max(1, self.reply.chunk_chars)
        return [text[i : i + step] for i in range(0, len(text), step)]

    # -- the wire ---------------------------------------------------------------------------

    def frame(self, event: dict[str, Any]) -> bytes:
        data = b"data: " + _compact(event).encode() + b"\n\n"
        if self.reply.event_lines:
            return b"event: " + event["type"].encode() + b"\n" + data
        return data

    async def stream(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)
        writer = _Writer(self, request, response)
        try:
            if self.reply.raw is not None:
                await writer.replay(self.reply.raw)
            elif not await writer.run(self.events()):
                return response
            await response.write_eof()
        except ConnectionResetError:
            self.fake.streams_cut += 1  # the client went away before the end
            self.fake.stream_cut.set()
        return response


class _Writer:
    """Writes one answer's events: batched, paced, with keep-alives in pauses and faults."""

    def __init__(self, answer: ResponseAnswer, request: web.Request, response: web.StreamResponse) -> None:
        self.answer, self.request, self.response = answer, request, response
        self.fake = answer.fake
        self.buffer: list[bytes] = []
        reply = answer.reply
        self.gap = 1.0 / reply.tokens_per_second if reply.tokens_per_second else 0.0
        self.paced = bool(self.gap) or reply.fault is not None
        self.conv = str(answer.body.get("prompt_cache_key") or "")  # the engine's conversation id
        self.chars = 0  # answer text sent so far
        self.tool_started = False  # a tool call's first event is in the buffer

    async def flush(self) -> None:
        if self.buffer:
            data, self.buffer = b"".join(self.buffer), []
            at = time.perf_counter()
            await self.response.write(data)
            self.log(at)

    def log(self, at: float) -> None:
        """Benchmarks: when each write started, with the answer text sent so far (send_log, as
        chat's), and when a write carried a tool call's start (tool_log)."""
        if self.fake.send_log is not None:
            self.fake.send_log.setdefault(self.conv, []).append((at, self.chars))
        if self.tool_started and self.fake.tool_log is not None:
            self.fake.tool_log.setdefault(self.conv, []).append(at)
        self.tool_started = False

    async def run(self, events: Any) -> bool:
        """False when a fault dropped the connection."""
        reply, chunks = self.answer.reply, 0
        await self.fake._pause(reply.first_token_delay)
        for event in events:
            if isinstance(event, Pause):
                await self.flush()
                await self.keep_alive(event.seconds)
                for hold in event.holds:
                    await hold.wait()
                continue
            due = reply.fault is not None and self.fault_due(event["type"], chunks)
            if due and reply.fault is not None and not await self.fault(reply.fault):
                return False
            delta = event["type"] == "response.output_text.delta"
            self.buffer.append(self.answer.frame(event))
            if event["type"] == "response.output_item.added" and event["item"]["type"] in TOOL_ITEMS:
                self.tool_started = True
            if delta:
                self.chars += len(event["delta"])
                chunks += 1
                if self.paced or chunks == 1 or len(self.buffer) >= 64:
                    await self.flush()
                    await self.fake._pause(self.gap)
        if reply.done_marker:
            self.buffer.append(b"data: [DONE]\n\n")
        await self.flush()
        self.fake.stream_ends.append(time.perf_counter())
        return True

    def fault_due(self, kind: str, chunks: int) -> bool:
        """The fault comes before text delta number `after_chunks`, or past the last delta (before
        output_text.done) when there are fewer."""
        after = self.answer.reply.fault.after_chunks if self.answer.reply.fault else -1
        if kind == "response.output_text.delta":
            return after == chunks
        return kind == "response.output_text.done" and after >= chunks

    async def keep_alive(self, seconds: float) -> None:
        """A tool runs for `seconds` (fake time): only keep-alives go out meanwhile."""
        scale, every = self.fake.time_scale, self.answer.reply.keepalive_s
        left = seconds
        while left > 0:
            step = min(left, every) if every > 0 else left
            await self.fake._pause(step * scale)
            left -= step
            if every > 0 and left > 0:
                if self.answer.reply.keepalive_events:
                    await self.response.write(self.answer.frame(self.answer.event("keepalive")))
                else:
                    await self.response.write(b": keepalive\n\n")
                self.fake.keepalives_sent += 1

    async def fault(self, fault: Fault) -> bool:
        """Apply `fault`; False when the connection is gone."""
        await self.flush()
        if fault.kind == "cut":
            await self.response.write(b'data: {"sequence_number":' + str(self.answer.seq).encode())
            if self.request.transport is not None:
                self.request.transport.close()
            return False
        if fault.kind == "malformed":
            await self.response.write(b'data: {"type": garbled, "delta": [\n\n')
        else:
            await self.fake._pause(fault.stall_seconds)
        return True

    async def replay(self, raw: bytes) -> None:
        """A recorded stream, byte for byte, one event per write."""
        for event in re.split(rb"(?<=\n\n)", raw):
            if event:
                await self.response.write(event)
        self.fake.stream_ends.append(time.perf_counter())


def _last_user_text(body: dict[str, Any]) -> str:
    items = body.get("input")
    if isinstance(items, str):
        return items
    users = [i for i in items or () if isinstance(i, dict) and i.get("role") == "user"]
    content = users[-1].get("content") if users else ""
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return str(content or "")
