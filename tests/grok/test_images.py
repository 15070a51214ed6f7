"""Image generation (b64, data: prefix, URL downloads, moderation) and image input helpers."""

from __future__ import annotations

import base64
import io

import pytest
from PIL import Image

from bot.errors import BadInput, GrokModerated, GrokRejected, GrokUnavailable
from bot.grok import GrokClient, image_part, user_hash
from bot.grok.images import sniff_image_type
from tests.fakes.xai import FakeXAI, fake_xai, grok, tiny_png  # noqa: F401


def picture(fmt: str, size: tuple[int, int] = (3, 2)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (10, 200, 30)).save(out, format=fmt)
    return out.getvalue()


async def test_b64_images(fake_xai: FakeXAI, grok: GrokClient) -> None:
    result = await grok.generate_images(model="grok-imagine-image", prompt="a red fox", n=3, user="u1")
    assert len(result.images) == 3
    assert result.images[0].data == tiny_png(0)
    assert result.images[2].data == tiny_png(2)
    assert {i.mime_type for i in result.images} == {"image/png"}
    assert result.images[0].revised_prompt == "A detailed rendering of: a red fox"
    assert result.cost_ticks == 200_000_000 * 3
    assert result.model == "grok-imagine-image"
    body = fake_xai.requests[-1].json
    assert body == {
        "model": "grok-imagine-image",
        "prompt": "a red fox",
        "n": 3,
        "response_format": "b64_json",
        "user": "u1",
    }


async def test_data_prefix_is_stripped_and_type_sniffed(fake_xai: FakeXAI, grok: GrokClient) -> None:
    fake_xai.image_data_prefix = True
    fake_xai.image_mime_type = False
    result = await grok.generate_images(model="grok-imagine-image", prompt="p")
    assert result.images[0].data == tiny_png(0)
    assert result.images[0].mime_type == "image/png"


async def test_url_items_are_downloaded_at_once_without_the_key(fake_xai: FakeXAI, grok: GrokClient) -> None:
    fake_xai.force_image_urls = True
    result = await grok.generate_images(model="grok-2-image", prompt="p", n=2)
    assert [i.data for i in result.images] == [tiny_png(0), tiny_png(1)]
    assert result.images[1].mime_type == "image/png"
    assert result.cost_ticks == 700_000_000 * 2
    downloads = [r for r in fake_xai.requests if r.path.startswith("/xai-imgen/")]
    assert len(downloads) == 2
    assert all("authorization" not in r.headers for r in downloads)


async def test_expired_url_is_unavailable(fake_xai: FakeXAI, grok: GrokClient) -> None:
    fake_xai.force_image_urls = True
    fake_xai.image_url_ttl = -1  # already expired when fetched
    with pytest.raises(GrokUnavailable, match="404"):
        await grok.generate_images(model="grok-imagine-image", prompt="p")


@pytest.mark.parametrize("n", [0, 11, -1])
async def test_n_out_of_range_is_bad_input(fake_xai: FakeXAI, grok: GrokClient, n: int) -> None:
    with pytest.raises(BadInput, match="1 to 10"):
        await grok.generate_images(model="grok-imagine-image", prompt="p", n=n)
    assert fake_xai.requests == []


async def test_moderation_refusal(fake_xai: FakeXAI, grok: GrokClient) -> None:
    fake_xai.moderate_images = True
    with pytest.raises(GrokModerated) as caught:
        await grok.generate_images(model="grok-imagine-image", prompt="something bad")
    assert caught.value.status == 400
    assert len(fake_xai.requests) == 1


async def test_unknown_image_model(grok: GrokClient) -> None:
    with pytest.raises(GrokRejected) as caught:
        await grok.generate_images(model="grok-imagine-nope", prompt="p")
    assert caught.value.status == 404


@pytest.mark.parametrize(("fmt", "mime"), [("JPEG", "image/jpeg"), ("PNG", "image/png")])
def test_image_part_accepts_jpeg_and_png(fmt: str, mime: str) -> None:
    data = picture(fmt)
    part = image_part(data, detail="low")
    prefix = f"data:{mime};base64,"
    assert part.url.startswith(prefix)
    assert base64.b64decode(part.url[len(prefix) :]) == data
    assert part.detail == "low"
    assert image_part(data).detail is None


@pytest.mark.parametrize(
    "data",
    [
        picture("GIF"),
        picture("WEBP"),
        b"just some text, not an image at all",
        b"",
        b"\x89PNG\r\n\x1a\n" + b"\x00" * 40,  # a PNG signature on garbage
    ],
    ids=["gif", "webp", "text", "empty", "fake-png"],
)
def test_image_part_refuses_other_bytes(data: bytes) -> None:
    with pytest.raises(BadInput, match="JPEG or PNG images up to 10 MiB"):
        image_part(data)


def test_image_part_refuses_more_than_10_mib() -> None:
    big = picture("PNG") + b"\x00" * (10 * 1024 * 1024)
    with pytest.raises(BadInput, match="JPEG or PNG images up to 10 MiB"):
        image_part(big)


def test_image_part_refuses_unknown_detail() -> None:
    with pytest.raises(BadInput, match="auto, low, high"):
        image_part(picture("PNG"), detail="ultra")


def test_sniffing_reads_bytes_not_names() -> None:
    assert sniff_image_type(picture("JPEG")) == "image/jpeg"
    assert sniff_image_type(picture("PNG")) == "image/png"
    assert sniff_image_type(picture("GIF")) == "image/gif"
    assert sniff_image_type(picture("WEBP")) == "image/webp"
    assert sniff_image_type(b"photo.jpg") is None


def test_user_hash_is_opaque_and_stable() -> None:
    one = user_hash("discord", "123456789012345678")
    assert one == user_hash("discord", "123456789012345678")
    assert one != user_hash("slack", "123456789012345678")
    assert one != user_hash("discord", "123456789012345679")
    assert "123456789012345678" not in one
    assert len(one) == 32
    assert int(one, 16) >= 0
    assert user_hash("discord", "1", salt="s") != user_hash("discord", "1")
