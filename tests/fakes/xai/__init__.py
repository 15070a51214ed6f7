"""A fake xAI REST API: a real aiohttp server on 127.0.0.1 with the reference's framing, bodies and
status codes (docs: /work/shared/reference/xai-api.md §14 and xai-agent-tools.md), plus the pytest
fixtures `fake_xai` and `grok`.

Scripting (every switch is a plain attribute; set it any time):

    async with FakeXAI() as fake:              # or: fake = FakeXAI(); await fake.start() ... stop()
        fake.base_url                          # "http://127.0.0.1:<port>/v1"; fake.api_key "xai-test-key"
        fake.queue_reply(ScriptedReply(text="Hi", reasoning="hmm", fault=Fault("cut", after_chunks=2)))
            # FIFO, used by the next chat completion (streamed, whole or deferred) that passes
            # validation; nothing queued -> `fake.default_reply`, or "Echo: <last user text>".
            # ScriptedReply(at_cap=True, reasoning_tokens=8000): usage at the requested
            # max_completion_tokens (finish "length") and that much reasoning billed beside it;
            # reasoning_effort "none" bills no reasoning (thinking off).
        fake.fail_next(503, times=2, retry_after=1.0)   # the next /v1 requests (or those under path=)
        fake.requests                          # [RecordedRequest(method, path, headers, json)]
        fake.max_in_flight                     # most /v1 requests ever handled at once
        fake.now = lambda: t                   # clock for deferred 24 h expiry, RPM/TPM windows, image URLs

    Switches: moderate_images, image_data_prefix (b64 with "data:image/png;base64,"), image_mime_type,
    force_image_urls (answer with `url` whatever was asked), running_usage (legacy: a running `usage`
    on every chunk), include_usage_chunk (False: ignore stream_options), report_cost (cost_in_usd_ticks),
    cached_tokens, fingerprint, credits_exhausted (None | 403 | 429), code_style ("grpc" | "kebab" |
    "status"), rpm_limit / tpm_limit (per model, 60 s window) with rate_limit_retry_after,
    api_key_blocked / team_blocked / api_key_disabled, image_url_ttl, deferred_ttl.

The Responses API (`POST /v1/responses`, agent tools reference), scripted the same way:

        fake.queue_response(ScriptedResponse(
            text="Grok says [[1]](https://x.ai/).", reasoning="Looking it up.",
            tools=(ScriptedTool("x", "from:xai", seconds=40), ScriptedTool("web", "xai", sources=(...))),
            citations=(ScriptedCitation("https://x.ai/", marker=True),),
            event_lines=True, done_marker=True, keepalive_s=15, unknown_events=True))
        fake.time_scale = 0.01                 # a tool's scripted seconds run 100 times faster
        fake.responses_requests()              # what was sent (store, tools, include, input items)
        fake.serve_responses = False           # an endpoint without /v1/responses (404)

    ScriptedResponse(raw=b"data: ...") serves a recorded stream byte for byte. Errors of the
    reference's §5 come from validation (410 search_parameters, tool_choice without tools, a
    forced built-in tool, instructions with previous_response_id, domain and handle limits, rejected
    tool fields, penalties, reasoning effort) or from `stream_error`/`end="failed"` after a 200.

A stream chunk counts as one token for `tokens_per_second`; `Fault.after_chunks` counts text chunks.
Run standalone: `python -m tests.fakes.xai [--port N]`.
"""

from __future__ import annotations

from tests.fakes.xai.fixtures import FAST_RETRY, fake_xai, grok
from tests.fakes.xai.images import tiny_png
from tests.fakes.xai.models import API_KEY
from tests.fakes.xai.scripts import (
    Fault,
    RecordedRequest,
    ScriptedCitation,
    ScriptedReply,
    ScriptedResponse,
    ScriptedTool,
)
from tests.fakes.xai.server import FakeXAI

__all__ = [
    "API_KEY",
    "FAST_RETRY",
    "FakeXAI",
    "Fault",
    "RecordedRequest",
    "ScriptedCitation",
    "ScriptedReply",
    "ScriptedResponse",
    "ScriptedTool",
    "fake_xai",
    "grok",
    "tiny_png",
]
