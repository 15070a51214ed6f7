"""Generated images: reserve their price (as many as the limits allow), generate them with Grok,
post them as files that fit the platform's upload limit with the revised prompt, and charge per
image (or release the hold).
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Sequence
from datetime import datetime, tzinfo

from PIL import Image as PILImage

from bot.answer_lines import log_answer
from bot.callers import Caller, charge_key
from bot.errors import BadInput, PlatformError
from bot.grok import GeneratedImage, GrokClient, ImageResult, user_hash
from bot.platform import Image, Incoming
from bot.quotas import Ask, Charge, Quotas, Reservation
from bot.telling import Audience
from bot.wording import fewer_images

__all__ = ["ImageMaker", "fit_images", "image_caption"]

EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp", "image/gif": "gif"}


class ImageMaker:
    """Makes images for people and bills them: one reservation per request, settled per image.
    A request the limits cannot cover whole gets as many images as they allow, and says so."""

    def __init__(
        self, *, grok: GrokClient, quotas: Quotas, model: str, zone: tzinfo, clock: Callable[[], datetime]
    ) -> None:
        self._grok = grok
        self._quotas = quotas
        self._model = model
        self._zone = zone  # where a limit's reset is told in this time zone
        self._clock = clock

    async def imagine(
        self, incoming: Incoming, audience: Audience, *, caller: Caller, prompt: str, count: int
    ) -> None:
        """Generate images, post them as files with the revised prompt, charge per image.

        Every path after the reservation either settles it (the images reached the chat) or
        releases it; once the reply is open, a failure is told in it (it is the audience's)."""
        each = self._grok.prices.image_ticks(self._model, 1)
        ask = Ask(kind="image", model=self._model, unit_ticks=each, unit_images=1, units=count, least_units=1)
        reservation = await self._quotas.reserve_up_to(caller.payer, ask, is_admin=caller.is_exempt)
        made, cap = reservation.units, reservation.cap
        note = "" if cap is None else fewer_images(made, count, cap, zone=self._zone, now=self._clock())
        started = time.monotonic()
        try:
            result = await self._post(incoming, audience, prompt=prompt, count=made, note=note)
        except BaseException:
            await self._quotas.release(reservation)
            raise
        await self._settle(reservation, result, incoming, price=reservation.ticks, started=started)

    async def _post(
        self, incoming: Incoming, audience: Audience, *, prompt: str, count: int, note: str
    ) -> ImageResult:
        platform = audience.platform
        reply = await platform.start_reply(incoming.place, reply_to=incoming.message_id)
        audience.open_reply = reply
        await reply.status(f"🎨 Generating {count} image{'s' if count > 1 else ''}…")
        user = user_hash(incoming.place.platform, incoming.author.id)
        result = await self._grok.generate_images(model=self._model, prompt=prompt, n=count, user=user)
        images = fit_images(result.images, limit=platform.capabilities.max_upload_bytes)
        caption = "\n".join(filter(None, (image_caption(prompt, images), note)))
        try:
            await reply.finish(caption, images=images)
        except PlatformError:
            # The images are paid for: try once more as a plain upload before giving up.
            await platform.post_images(incoming.place, images, text=caption)
        audience.open_reply = None
        return result

    async def _settle(
        self, reservation: Reservation, result: ImageResult, incoming: Incoming, *, price: int, started: float
    ) -> None:
        model = result.model or self._model
        cost = result.cost_ticks if result.cost_ticks is not None else price
        await self._quotas.settle(
            reservation,
            Charge(
                kind="image",
                model=model,
                cost_ticks=cost,
                images=len(result.images),
                idempotency_key=charge_key("image", incoming),
                conversation_key=incoming.place.key,
            ),
        )
        log_answer(
            "image",
            incoming.place,
            user=incoming.author.id,
            model=model,
            cost_ticks=cost,
            images=len(result.images),
            total_s=time.monotonic() - started,
        )


def fit_images(images: Sequence[GeneratedImage], *, limit: int) -> list[Image]:
    """Images as files to post, re-encoded as JPEG when one is larger than the upload limit."""
    fitted = []
    for number, generated in enumerate(images, start=1):
        data, mime = generated.data, generated.mime_type
        if len(data) > limit:
            data, mime = _shrink(data, limit)
        extension = EXTENSIONS.get(mime, "png")
        fitted.append(Image(data, mime, f"grok-{number}.{extension}", caption=generated.revised_prompt))
    return fitted


def _shrink(data: bytes, limit: int) -> tuple[bytes, str]:
    with PILImage.open(io.BytesIO(data)) as image:
        rgb = image.convert("RGB")
        for quality in (90, 80, 70, 55, 40):
            out = io.BytesIO()
            rgb.save(out, format="JPEG", quality=quality, optimize=True)
            if out.tell() <= limit:
                return out.getvalue(), "image/jpeg"
            rgb = rgb.resize((max(1, rgb.width * 3 // 4), max(1, rgb.height * 3 // 4)))
    raise BadInput("The generated image is larger than this chat accepts even after compression.")


def image_caption(prompt: str, images: Sequence[Image]) -> str:
    revised = [image.caption for image in images if image.caption and image.caption != prompt]
    lines = [f"🎨 **{prompt}**"]
    if revised:
        lines.append("Grok's revised prompt: " + revised[0])
    return "\n".join(lines)
