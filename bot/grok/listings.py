"""What xAI lists about itself: models (with live prices, loaded into the PriceBook) and the API key."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from bot.errors import GrokError, GrokUnavailable
from bot.grok.core import ClientCore
from bot.grok.transport import json_object
from bot.grok.types import ApiKeyInfo, ModelInfo
from bot.grok.wire import parse_api_key, parse_image_model, parse_language_model

log = logging.getLogger(__name__)


class ListingCalls(ClientCore):
    """GrokClient's model and key listings and the live price refresh."""

    async def list_models(self) -> list[str]:
        response, _ = await self.transport.call("GET", "/models")
        data = json_object(response).get("data")
        return [str(m["id"]) for m in data if isinstance(m, dict) and "id" in m] if data else []

    async def language_models(self) -> list[ModelInfo]:
        return await self._models("/language-models", parse_language_model)

    async def image_models(self) -> list[ModelInfo]:
        return await self._models("/image-generation-models", parse_image_model)

    async def _models(self, path: str, parse: Callable[[Mapping[str, Any]], ModelInfo]) -> list[ModelInfo]:
        response, _ = await self.transport.call("GET", path)
        models = json_object(response).get("models")
        try:
            return [parse(m) for m in models or ()]
        except (KeyError, TypeError) as exc:
            raise GrokUnavailable(f"xAI sent an unreadable model list from {path}") from exc

    async def api_key_info(self) -> ApiKeyInfo:
        response, _ = await self.transport.call("GET", "/api-key")
        return parse_api_key(json_object(response))

    async def refresh_prices(self) -> bool:
        """Load live prices into `self.prices`; False (the table unchanged) when unreachable."""
        try:
            language = await self.language_models()
            image = await self.image_models()
        except GrokError as exc:
            log.warning("grok price refresh failed (%s); keeping the current table", type(exc).__name__)
            return False
        self.prices.update(language=language, image=image)
        log.info("grok prices refreshed: %d language, %d image models", len(language), len(image))
        return True
