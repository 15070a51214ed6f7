"""The fake's image generation: b64 or served temporary URLs, moderation, and real tiny PNGs."""

from __future__ import annotations

import base64
import re
import struct
import uuid
import zlib
from typing import Any

from aiohttp import web

from tests.fakes.xai.models import IMAGE_MODELS, TEAM_ID


def tiny_png(index: int = 0) -> bytes:
    """A real 2x2 PNG whose colour depends on `index`."""
    rgb = bytes(((60 * index) % 256, 120, 200))
    raw = b"".join(b"\x00" + rgb * 2 for _ in range(2))

    def chunk(tag: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(tag + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


class ImageRoutes:
    """The FakeXAI routes of image generation (a mixin: `self` is the FakeXAI)."""

    async def _images_post(self, request: web.Request) -> web.StreamResponse:
        body = await self._body(request)
        if isinstance(body, web.Response):
            return body
        name = body.get("model")
        model = self._resolve(name) if isinstance(name, str) else ""
        if model not in IMAGE_MODELS:
            return self.error(
                404, f"The model {name} does not exist or your team {TEAM_ID} does not have access to it."
            )
        for unsupported in ("size", "quality", "style"):
            if unsupported in body:
                return self.error(400, f"Argument not supported: {unsupported}")
        prompt, n, fmt = body.get("prompt"), body.get("n", 1), body.get("response_format", "url")
        if self.force_image_urls and fmt in ("url", "b64_json"):
            fmt = "url"
        if not isinstance(prompt, str) or not prompt:
            return self.error(400, "A prompt is required.")
        if not isinstance(n, int) or not 1 <= n <= 10:
            return self.error(400, f"n must be between 1 and 10, got {n}.")
        if fmt not in ("url", "b64_json"):
            return self.error(400, f"Invalid response_format {fmt!r}: use url or b64_json.")
        if self.moderate_images:
            return web.json_response(
                {"code": "Client specified an invalid argument",
                 "error": "Generated image rejected by content moderation"},
                status=400,
            )  # fmt: skip
        data = []
        for index in range(n):
            png = tiny_png(index)
            item: dict[str, Any] = {"revised_prompt": f"A detailed rendering of: {prompt}"}
            if fmt == "url":
                token = uuid.uuid4().hex[:12]
                self._images[token] = (png, self.now())
                item["url"] = f"{self.origin}/xai-imgen/xai-tmp-imgen-{token}.png"
            else:
                encoded = base64.b64encode(png).decode()
                item["b64_json"] = ("data:image/png;base64," if self.image_data_prefix else "") + encoded
                if self.image_mime_type:
                    item["mime_type"] = "image/png"
            data.append(item)
        cost = IMAGE_MODELS[model][1] * 100_000_000 * n
        return web.json_response({"data": data, "usage": {"cost_in_usd_ticks": cost}})

    async def _image_file(self, request: web.Request) -> web.StreamResponse:
        match = re.fullmatch(r"xai-tmp-imgen-([0-9a-f]+)\.png", request.match_info["name"])
        stored = self._images.get(match.group(1)) if match else None
        if stored is None or self.now() - stored[1] > self.image_url_ttl:
            return web.Response(status=404, text="Not Found")
        return web.Response(body=stored[0], content_type="image/png")
