"""The fake's Responses API (`POST /v1/responses`): validation with xAI's errors (agent tools
reference §5), then a scripted answer, whole or streamed (response_answer.py)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from tests.fakes.xai.models import FakeModel, tokens
from tests.fakes.xai.response_answer import ResponseAnswer
from tests.fakes.xai.scripts import ScriptedResponse

MAX_DOMAINS = 5
MAX_HANDLES = 20
REJECTED_FIELDS = ("search_context_size", "user_location", "external_web_access")
DESERIALIZE = "Failed to deserialize the JSON body into the target type: "


def _prompt_tokens(items: Any) -> int:
    """What the input costs: text at 4 characters a token, 256 tokens an image."""
    if isinstance(items, str):
        return tokens(items) + 3
    total = 0
    for item in items if isinstance(items, list) else ():
        content = item.get("content") if isinstance(item, dict) else None
        if isinstance(content, str):
            total += tokens(content) + 3
        elif isinstance(content, list):
            for part in content:
                if isinstance(part, dict):
                    is_image = part.get("type") == "input_image"
                    total += 256 if is_image else tokens(str(part.get("text", "")))
            total += 3
    return total


class ResponseRoutes:
    """The FakeXAI route of the Responses API (a mixin: `self` is the FakeXAI)."""

    def _tool_problem(self, tool: Any) -> web.Response | None:
        if not isinstance(tool, dict) or tool.get("type") not in (
            "web_search",
            "x_search",
            "code_interpreter",
            "function",
            "file_search",
            "mcp",
        ):
            return self.error(422, DESERIALIZE + "tools: unknown variant")
        for name in (*REJECTED_FIELDS, "container"):
            if name in tool:
                return self.error(
                    400, f"Argument not supported: {name}. Request will be rejected if this field is set."
                )
        for allowed, excluded, most, what in (
            ("allowed_domains", "excluded_domains", MAX_DOMAINS, "domains"),
            ("allowed_x_handles", "excluded_x_handles", MAX_HANDLES, "handles"),
        ):
            if tool.get(allowed) and tool.get(excluded):
                return self.error(
                    400, f"Invalid request content: {allowed} and {excluded} cannot be set together."
                )
            for key in (allowed, excluded):
                if len(tool.get(key) or ()) > most:
                    return self.error(400, f"Invalid request content: A maximum of {most} {what} can be set.")
        return None

    def _validate_responses(self, body: dict[str, Any]) -> tuple[FakeModel, int] | web.Response:
        if not isinstance(body.get("model"), str):
            return self.error(422, DESERIALIZE + "missing field `model`")
        if "input" not in body:
            return self.error(422, DESERIALIZE + "missing field `input`")
        if not body["input"]:
            return self.error(400, "Invalid request content: the input must not be empty.")
        model = self._models.get(self._resolve(body["model"]))
        if model is None or "search_parameters" in body:
            return self._refused(body, model)
        return self._check_fields(body, model) or (model, _prompt_tokens(body["input"]))

    def _check_fields(self, body: dict[str, Any], model: FakeModel) -> web.Response | None:
        tools, choice = body.get("tools") or [], body.get("tool_choice")
        if choice is not None and not tools:
            return self.error(
                400,
                "Invalid request content: A tool_choice was set on the request but no tools were specified.",
            )
        if isinstance(choice, dict) and choice.get("type") != "function":
            return self.error(
                422,
                DESERIALIZE + "tool_choice: data did not match any variant of untagged enum ModelToolChoice",
            )
        if "instructions" in body and "previous_response_id" in body:
            return self.error(400, "Argument not supported: instructions and previous_response_id together")
        for key, name in (("presence_penalty", "presencePenalty"), ("frequency_penalty", "frequencyPenalty")):
            if key in body:
                return self.error(400, f"Model {model.id} does not support parameter {name}.")
        effort = body.get("reasoning", {}).get("effort") if isinstance(body.get("reasoning"), dict) else None
        if effort is not None and effort not in (model.efforts or ()):
            return self.error(400, "Argument not supported on this model: reasoning.effort")
        return next((p for p in map(self._tool_problem, tools) if p is not None), None)

    async def _responses(self, request: web.Request) -> web.StreamResponse:
        if not self.serve_responses:
            return await self._no_route(request)
        body = await self._body(request)
        if isinstance(body, web.Response):
            return body
        checked = self._validate_responses(body)
        if isinstance(checked, web.Response):
            return checked
        model, prompt = checked
        if prompt > model.context:
            return self.error(
                400,
                f"This model's maximum prompt length is {model.context} but the request "
                f"contains {prompt} tokens.",
            )
        limited = self._rate_limited(model.id, prompt)
        if limited is not None:
            return limited
        queue = self._response_replies
        reply = queue.popleft() if queue else self.default_response or ScriptedResponse()
        if reply.status != 200:
            return self._failure_response(reply.status, reply.error_body, reply.retry_after)
        answer = ResponseAnswer(self, model, body, reply, prompt)
        if body.get("stream"):
            return await answer.stream(request)
        await self._pause(reply.first_token_delay)
        return web.json_response(answer.final())
