"""Images users attach: downloaded with the bot token and sent to the model as image input."""

from __future__ import annotations

import base64

import pytest

from adapters.slack import SlackAdapter
from bot.errors import PlatformError
from bot.platform import Attachment
from tests.adapters.slack.conftest import ANA, GENERAL, Stack
from tests.fakes.slack import FakeSlack
from tests.fakes.xai import ScriptedReply, tiny_png


async def test_an_attached_image_goes_to_the_model(stack: Stack) -> None:
    png = tiny_png()
    file = stack.slack.add_file(ANA, "cat.png", "image/png", png)
    stack.xai.queue_reply(ScriptedReply(text="A tiny square."))
    message, _ = await stack.sender.mention(GENERAL, ANA, "what is this?", files=(file,))
    await stack.settle()
    assert stack.answer_text(GENERAL, message.ts) == "A tiny square."
    content = stack.xai.chat_requests()[0].json["messages"][-1]["content"]
    images = [part for part in content if part.get("type") == "image_url"]
    assert images[0]["image_url"]["url"] == "data:image/png;base64," + base64.b64encode(png).decode()


async def test_other_files_get_a_clear_message(stack: Stack) -> None:
    file = stack.slack.add_file(ANA, "notes.txt", "text/plain", b"hello")
    await stack.sender.mention(GENERAL, ANA, "summarise", files=(file,))
    await stack.settle()
    assert stack.xai.chat_requests() == []
    [notice] = [e["text"] for e in stack.slack.ephemerals]
    assert "notes.txt" in notice and "PNG" in notice


async def test_download_needs_access(stack: Stack, fake_slack: FakeSlack) -> None:
    platform = stack.adapter.platform
    file = fake_slack.add_file(ANA, "a.png", "image/png", tiny_png())
    url = file.json(fake_slack.base_url)["url_private"]
    assert await platform.download(Attachment("a.png", "image/png", 10, url=url)) == file.data
    fake_slack.bot_token = "xoxb-rotated"  # the file server now answers a sign-in page
    with pytest.raises(PlatformError, match="no access"):
        await platform.download(Attachment("a.png", "image/png", 10, url=url))
    with pytest.raises(PlatformError, match="not a Slack file"):
        await platform.download(Attachment("x.png", "image/png", 10, url="https://example.com/x.png"))


def test_the_adapter_needs_its_secrets(stack: Stack) -> None:
    settings = stack.adapter.settings.model_copy(update={"slack_signing_secret": None})
    with pytest.raises(ValueError, match="SLACK_SIGNING_SECRET"):
        SlackAdapter(settings, stack.engine)


async def test_a_slack_connect_file_is_read_with_files_info(stack: Stack) -> None:
    # In Slack Connect channels the event names the file only: {"id", "file_access": "check_file_info"}.
    stack.slack.add_channel("C0SHARED1", is_ext_shared=True)
    png = tiny_png()
    file = stack.slack.add_file(ANA, "shared.png", "image/png", png)
    stack.xai.queue_reply(ScriptedReply(text="A shared square."))
    message, _ = await stack.sender.mention("C0SHARED1", ANA, "what is this?", files=(file,))
    await stack.settle()
    assert stack.answer_text("C0SHARED1", message.ts) == "A shared square."
    assert [c.args.get("file") for c in stack.slack.calls_to("files.info")] == [file.id]
    content = stack.xai.chat_requests()[0].json["messages"][-1]["content"]
    [image] = [part for part in content if part.get("type") == "image_url"]
    assert image["image_url"]["url"] == "data:image/png;base64," + base64.b64encode(png).decode()


async def test_a_hidden_or_deleted_file_is_named_not_skipped(stack: Stack) -> None:
    file = stack.slack.add_file(ANA, "old.png", "image/png", tiny_png())
    file.mode = "hidden_by_limit"
    await stack.sender.mention(GENERAL, ANA, "what was in this?", files=(file,))
    await stack.settle()
    assert stack.xai.chat_requests() == []  # not answered as if nothing had been attached
    [notice] = [e["text"] for e in stack.slack.ephemerals]
    assert "old.png" in notice and "no longer shows it" in notice


async def test_a_slack_connect_file_that_files_info_refuses_is_named(stack: Stack) -> None:
    stack.slack.add_channel("C0SHARED2", is_ext_shared=True)
    file = stack.slack.add_file(ANA, "gone.png", "image/png", tiny_png())
    stack.slack.fail["files.info"].append("file_not_found")
    await stack.sender.mention("C0SHARED2", ANA, "and this?", files=(file,))
    await stack.settle()
    assert stack.xai.chat_requests() == []
    [notice] = [e["text"] for e in stack.slack.ephemerals]
    assert file.id in notice and "cannot open" in notice
