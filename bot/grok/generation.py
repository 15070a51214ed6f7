"""Image generation (`/v1/images/generations`): the images as bytes, whether xAI sends them inline
or as temporary URLs, with the revised prompts and the cost.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx

from bot.errors import BadInput, GrokUnavailable
from bot.grok.core import ClientCore
from bot.grok.images import decode_base64_image, sniff_image_type
from bot.grok.transport import json_object
from bot.grok.types import GeneratedImage, ImageResult

log = logging.getLogger(__name__)


class ImageCalls(ClientCore):
    """GrokClient's image generation."""

    async def generate_images(
        self, *, model: str, prompt: str, n: int = 1, user: str | None = None
    ) -> ImageResult:
        if not 1 <= n <= 10:
            raise BadInput("Grok makes 1 to 10 images at a time.")
        body: dict[str, Any] = {
            "model": model,
            "prompt": prompt,
            "n": n,
            "response_format": "b64_json",
        }
        if user is not None:
            body["user"] = user
        response, _ = await self.transport.call(
            "POST", "/images/generations", body=body, model=model, tokens=0
        )
        raw = json_object(response)
        items = raw.get("data")
        if not isinstance(items, list) or not items:
            raise GrokUnavailable("xAI answered the image request without images")
        images = [await self._image(item) for item in items]
        usage = raw.get("usage")
        cost = usage.get("cost_in_usd_ticks") if isinstance(usage, dict) else None
        result = ImageResult(
            images=tuple(images),
            model=str(raw.get("model") or model),
            cost_ticks=cost if isinstance(cost, int) else None,
        )
        log.info("grok images model=%s n=%d cost_ticks=%s", result.model, len(images), cost)
        return result

    async def _image(self, item: Any) -> GeneratedImage:
        if not isinstance(item, dict):
            raise GrokUnavailable("xAI sent an unreadable image item")
        declared: str | None = None
        if isinstance(item.get("b64_json"), str) and item["b64_json"]:
            try:
                data, declared = decode_base64_image(item["b64_json"])
            except ValueError:
                raise GrokUnavailable("xAI sent an image that is not base64") from None
        elif isinstance(item.get("url"), str) and item["url"]:
            data, declared = await self._download(item["url"])
        else:
            raise GrokUnavailable("xAI sent an image item with neither b64_json nor url")
        stated = item.get("mime_type")
        mime = (stated if isinstance(stated, str) else None) or sniff_image_type(data) or declared
        return GeneratedImage(
            data=data,
            mime_type=mime or "application/octet-stream",
            revised_prompt=str(item.get("revised_prompt") or ""),
        )

    async def _download(self, url: str) -> tuple[bytes, str | None]:
        """A generated image's temporary URL, fetched at once (without our key: it is not xAI's API)."""
        try:
            response = await self.transport.http.get(url, timeout=self.transport.timeout)
        except httpx.TransportError as exc:
            raise GrokUnavailable(f"a generated image could not be downloaded: {exc!r}") from exc
        if response.status_code != 200:
            raise GrokUnavailable(
                f"a generated image could not be downloaded ({response.status_code})",
                status=response.status_code,
            )
        content_type = response.headers.get("content-type", "").split(";", 1)[0].strip()
        return response.content, content_type if content_type.startswith("image/") else None
