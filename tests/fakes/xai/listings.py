"""The fake's model listings, API key and tokenizer."""

from __future__ import annotations

import re
import zlib
from typing import Any

from aiohttp import web

from tests.fakes.xai.models import IMAGE_MODELS, LANGUAGE_MODELS, TEAM_ID, FakeModel


class ListingRoutes:
    """The FakeXAI routes that list models, the key and tokens (a mixin: `self` is the FakeXAI)."""

    def _language_json(self, model: FakeModel) -> dict[str, Any]:
        return {
            "id": model.id, "fingerprint": self.fingerprint, "created": 1743724800,
            "object": "model", "owned_by": "xai", "version": "1.0",
            "input_modalities": ["text", "image"], "output_modalities": ["text"],
            "prompt_text_token_price": model.prices[0], "cached_prompt_text_token_price": model.prices[1],
            "prompt_image_token_price": model.prices[0], "completion_text_token_price": model.prices[2],
            "search_price": 250000000, "aliases": list(model.aliases),
        }  # fmt: skip

    def _image_json(self, mid: str) -> dict[str, Any]:
        aliases, cents = IMAGE_MODELS[mid]
        return {
            "id": mid, "fingerprint": self.fingerprint, "max_prompt_length": 1024,
            "created": 1733961600, "object": "model", "owned_by": "xai", "version": "1.0",
            "input_modalities": ["text"], "output_modalities": ["image"],
            "image_price": cents, "aliases": list(aliases),
        }  # fmt: skip

    async def _models_list(self, request: web.Request) -> web.StreamResponse:
        ids = [*self._models, *IMAGE_MODELS]
        data = [{"id": i, "created": 1752019200, "object": "model", "owned_by": "xai"} for i in ids]
        return web.json_response({"object": "list", "data": data})

    async def _model_get(self, request: web.Request) -> web.StreamResponse:
        mid = self._resolve(request.match_info["mid"])
        if mid not in self._models and mid not in IMAGE_MODELS:
            return self.error(404, f"The model {request.match_info['mid']} does not exist.")
        return web.json_response({"id": mid, "created": 1752019200, "object": "model", "owned_by": "xai"})

    async def _language_models(self, request: web.Request) -> web.StreamResponse:
        return web.json_response({"models": [self._language_json(m) for m in LANGUAGE_MODELS]})

    async def _language_model(self, request: web.Request) -> web.StreamResponse:
        model = self._models.get(self._resolve(request.match_info["mid"]))
        if model is None:
            return self.error(404, f"The model {request.match_info['mid']} does not exist.")
        return web.json_response(self._language_json(model))

    async def _image_models(self, request: web.Request) -> web.StreamResponse:
        return web.json_response({"models": [self._image_json(m) for m in IMAGE_MODELS]})

    async def _image_model(self, request: web.Request) -> web.StreamResponse:
        mid = self._resolve(request.match_info["mid"])
        if mid not in IMAGE_MODELS:
            return self.error(404, f"The model {request.match_info['mid']} does not exist.")
        return web.json_response(self._image_json(mid))

    async def _api_key(self, request: web.Request) -> web.StreamResponse:
        return web.json_response({
            "redacted_api_key": f"xai-...{self.api_key[-4:]}", "user_id": "59fbe5f2-fake-user",
            "name": "Fake key", "team_id": TEAM_ID, "create_time": "2024-01-01T12:55:18.139305Z",
            "modify_time": "2024-08-28T17:20:12.343321Z", "api_key_id": "ae1e1841-fake-key",
            "acls": ["api-key:model:*", "api-key:endpoint:*"], "team_blocked": self.team_blocked,
            "api_key_blocked": self.api_key_blocked, "api_key_disabled": self.api_key_disabled,
        })  # fmt: skip

    async def _tokenize(self, request: web.Request) -> web.StreamResponse:
        body = await self._body(request)
        if isinstance(body, web.Response):
            return body
        if not isinstance(body.get("text"), str):
            return self.error(422, "Failed to deserialize the JSON body: missing field `text`.")
        pieces = re.findall(r"\s?\w+|\s?[^\w\s]", body["text"])
        tokens = [
            {"token_id": zlib.crc32(p.encode()) % 131072, "string_token": p,
             "token_bytes": list(p.encode())}
            for p in pieces
        ]  # fmt: skip
        return web.json_response({"token_ids": tokens})

    async def _no_route(self, request: web.Request) -> web.StreamResponse:
        return self.error(
            404,
            "No handler found on route. Please double check your URL and consult "
            "https://api.x.ai/docs for more information.",
        )
