"""Conversations through the real discord.py client: mentions, replies, threads and DMs."""

from __future__ import annotations

from tests.adapters.discord.conftest import Stack
from tests.fakes.xai import ScriptedReply, tiny_png


async def test_a_mention_is_answered_as_a_reply_with_the_exact_model_text(stack: Stack) -> None:
    fake, world = stack.fake, stack.world
    answer = "Paris is the capital of **France**. It has been since 987."
    stack.xai.queue_reply(ScriptedReply(text=answer, tokens_per_second=40, chunk_chars=6))

    asked = await fake.user_message(
        world.general, world.alice, "what is the capital of France?", mention_bot=True
    )

    await fake.wait_until(lambda: any(m["content"] == answer for m in fake.bot_messages(world.general)))
    reply = fake.bot_messages(world.general)[-1]
    assert reply["message_reference"]["message_id"] == asked["id"]
    versions = fake.versions(reply["id"])
    assert len(versions) >= 2, versions  # streamed: first words, then edits
    assert all(v.endswith("⚪") for v in versions[:-1]) and versions[-1] == answer
    sent = stack.xai.chat_requests()[-1].json["messages"][-1]
    assert "what is the capital of France?" in str(sent["content"])
    assert f"<@{fake.bot_user_id}>" not in str(sent["content"])


async def _answered(stack: Stack, channel: str, text: str) -> dict[str, object]:
    fake = stack.fake
    await fake.wait_until(lambda: any(m["content"] == text for m in fake.bot_messages(channel)))
    await stack.idle()
    return next(m for m in fake.bot_messages(channel) if m["content"] == text)


async def test_replying_to_the_bot_continues_the_conversation_with_its_history(stack: Stack) -> None:
    fake, world, xai = stack.fake, stack.world, stack.xai
    xai.queue_reply(ScriptedReply(text="The answer is 42."))
    await fake.user_message(world.general, world.alice, "what is the answer?", mention_bot=True)
    first = await _answered(stack, world.general, "The answer is 42.")

    xai.queue_reply(ScriptedReply(text="Because Deep Thought said so."))
    await fake.user_message(world.general, world.alice, "why?", reply_to=str(first["id"]))
    await _answered(stack, world.general, "Because Deep Thought said so.")

    texts = [str(m["content"]) for m in xai.chat_requests()[-1].json["messages"]]
    joined = "\n".join(texts)
    assert "what is the answer?" in joined and "The answer is 42." in joined and "why?" in texts[-1]


async def test_a_reply_to_someone_else_and_plain_chatter_are_ignored(stack: Stack) -> None:
    fake, world = stack.fake, stack.world
    other = await fake.user_message(world.general, world.bob, "lunch?")
    await fake.user_message(world.general, world.alice, "yes", reply_to=other["id"])
    await fake.user_message(world.general, world.alice, "anyone here?")
    stack.xai.queue_reply(ScriptedReply(text="Hello!"))
    await fake.user_message(world.general, world.alice, "hi", mention_bot=True)
    await _answered(stack, world.general, "Hello!")
    assert len(stack.xai.chat_requests()) == 1  # only the mention reached the model
    assert len(fake.bot_messages(world.general)) == 1


async def test_a_thread_the_bot_answers_in_continues_without_mentions(stack: Stack) -> None:
    fake, world, xai = stack.fake, stack.world, stack.xai
    xai.queue_reply(ScriptedReply(text="Rust has ownership."))
    asked = await fake.user_message(world.general, world.alice, "explain rust", mention_bot=True)
    await _answered(stack, world.general, "Rust has ownership.")
    # "Create Thread" from the mention: the thread's id is the message's id, so it is that conversation.
    thread = fake.add_thread(world.general, "rust", starter_message_id=str(asked["id"]))

    xai.queue_reply(ScriptedReply(text="Borrowing lends a reference."))
    await fake.user_message(thread, world.bob, "and borrowing?")
    answer = await _answered(stack, thread, "Borrowing lends a reference.")
    assert answer["channel_id"] == thread
    history = "\n".join(str(m["content"]) for m in xai.chat_requests()[-1].json["messages"])
    assert "explain rust" in history and "Rust has ownership." in history

    xai.queue_reply(ScriptedReply(text="Lifetimes bound references."))
    await fake.user_message(thread, world.alice, "lifetimes?")
    await _answered(stack, thread, "Lifetimes bound references.")

    other = fake.add_thread(world.general, "unrelated")
    await fake.user_message(other, world.alice, "nobody asked the bot here")
    xai.queue_reply(ScriptedReply(text="Mentioned in a new thread."))
    await fake.user_message(other, world.alice, "now I do", mention_bot=True)
    await _answered(stack, other, "Mentioned in a new thread.")
    assert [m["content"] for m in fake.bot_messages(other)] == ["Mentioned in a new thread."]


async def test_direct_messages_are_a_conversation(stack: Stack) -> None:
    fake, world, xai = stack.fake, stack.world, stack.xai
    dm = fake.dm_channel(world.alice)
    xai.queue_reply(ScriptedReply(text="Hi Alice."))
    await fake.user_message(dm, world.alice, "hello")
    await _answered(stack, dm, "Hi Alice.")
    xai.queue_reply(ScriptedReply(text="You said hello."))
    await fake.user_message(dm, world.alice, "what did I say?")
    await _answered(stack, dm, "You said hello.")
    history = "\n".join(str(m["content"]) for m in xai.chat_requests()[-1].json["messages"])
    assert "hello" in history and "Hi Alice." in history


async def test_a_thread_started_from_the_bots_answer_continues_that_conversation(stack: Stack) -> None:
    fake, world, xai = stack.fake, stack.world, stack.xai
    xai.queue_reply(ScriptedReply(text="Tea is best brewed at 80 degrees."))
    await fake.user_message(world.general, world.alice, "how hot for green tea?", mention_bot=True)
    answer = await _answered(stack, world.general, "Tea is best brewed at 80 degrees.")
    thread = fake.add_thread(world.general, "tea", starter_message_id=str(answer["id"]))

    xai.queue_reply(ScriptedReply(text="Two minutes."))
    await fake.user_message(thread, world.bob, "for how long?")
    await _answered(stack, thread, "Two minutes.")
    history = "\n".join(str(m["content"]) for m in xai.chat_requests()[-1].json["messages"])
    assert "how hot for green tea?" in history and "80 degrees" in history


async def test_a_restarted_bot_continues_from_the_database(stack: Stack) -> None:
    fake, world, xai = stack.fake, stack.world, stack.xai
    xai.queue_reply(ScriptedReply(text="Your number is 7."))
    await fake.user_message(world.general, world.alice, "remember the number 7", mention_bot=True)
    first = await _answered(stack, world.general, "Your number is 7.")
    await stack.adapter.stop()

    restarted = await stack.new_adapter()  # a new discord.py client with empty caches, same database
    await restarted.start()
    xai.queue_reply(ScriptedReply(text="It was 7."))
    await fake.user_message(world.general, world.alice, "which number?", reply_to=str(first["id"]))
    await _answered(stack, world.general, "It was 7.")
    history = "\n".join(str(m["content"]) for m in xai.chat_requests()[-1].json["messages"])
    assert "remember the number 7" in history and "Your number is 7." in history
    assert fake.identifies == 2


async def test_a_mention_of_the_bots_managed_role_is_a_mention_of_the_bot(stack: Stack) -> None:
    fake, world = stack.fake, stack.world
    managers = next(r["id"] for r in fake.guilds[world.guild]["roles"] if r["name"] == "managers")
    await fake.user_message(world.general, world.alice, f"<@&{managers}> can someone help?")
    stack.xai.queue_reply(ScriptedReply(text="Four."))
    asked = await fake.user_message(world.general, world.alice, "what is 2+2?", mention_bot_role=True)
    assert asked["content"].startswith(f"<@&{fake.bot_role(world.guild)}>") and not asked["mentions"]

    reply = await _answered(stack, world.general, "Four.")
    assert reply["message_reference"]["message_id"] == asked["id"]
    assert len(stack.xai.chat_requests()) == 1  # the other role's mention was not for the bot
    sent = str(stack.xai.chat_requests()[-1].json["messages"][-1]["content"])
    assert "what is 2+2?" in sent and "<@&" not in sent


async def test_forwarding_the_bots_answer_is_not_a_reply_to_it(stack: Stack) -> None:
    fake, world, xai = stack.fake, stack.world, stack.xai
    xai.queue_reply(ScriptedReply(text="Water boils at 100 degrees."))
    await fake.user_message(world.general, world.alice, "when does water boil?", mention_bot=True)
    answer = await _answered(stack, world.general, "Water boils at 100 degrees.")

    forward = await fake.user_message(world.random, world.bob, "", forward_of=str(answer["id"]))
    await fake.user_message(world.general, world.bob, "", forward_of=str(answer["id"]))
    assert forward["message_reference"]["type"] == 1 and "referenced_message" not in forward
    xai.queue_reply(ScriptedReply(text="Still here."))
    await fake.user_message(world.general, world.alice, "thanks", mention_bot=True)
    await _answered(stack, world.general, "Still here.")

    assert [m["content"] for m in fake.bot_messages(world.general)] == [
        "Water boils at 100 degrees.",
        "Still here.",
    ]  # no "Ask me something…" below the forward
    assert not fake.bot_messages(world.random) and len(xai.chat_requests()) == 2


async def test_a_forward_into_a_conversation_says_what_it_quotes(stack: Stack) -> None:
    fake, world, xai = stack.fake, stack.world, stack.xai
    xai.queue_reply(ScriptedReply(text="Ask away."))
    asked = await fake.user_message(world.general, world.alice, "help me with a notice", mention_bot=True)
    await _answered(stack, world.general, "Ask away.")
    thread = fake.add_thread(world.general, "notice", starter_message_id=str(asked["id"]))
    xai.queue_reply(ScriptedReply(text="Noted."))
    notice = await fake.user_message(
        world.random, world.bob, f"<@{fake.bot_user_id}> Office closed on Friday <@999> says so"
    )
    await _answered(stack, world.random, "Noted.")  # it mentions the bot: answered where it was said

    xai.queue_reply(ScriptedReply(text="It says the office is closed on Friday."))
    await fake.user_message(thread, world.alice, "", forward_of=str(notice["id"]))
    await _answered(stack, thread, "It says the office is closed on Friday.")

    sent = str(xai.chat_requests()[-1].json["messages"][-1]["content"])
    assert "[forwarded message] Office closed on Friday @999 says so" in sent  # mentions as typed text
    assert f"<@{fake.bot_user_id}>" not in sent
    assert [m["content"] for m in fake.bot_messages(thread)] == ["It says the office is closed on Friday."]


async def test_a_forwarded_image_in_a_dm_reaches_grok(stack: Stack) -> None:
    fake, world, xai = stack.fake, stack.world, stack.xai
    picture = await fake.user_message(world.random, world.bob, "", attachments=[("pixel.png", tiny_png(2))])
    dm = fake.dm_channel(world.alice)
    xai.queue_reply(ScriptedReply(text="A pixel."))
    await fake.user_message(dm, world.alice, "", forward_of=str(picture["id"]))
    await _answered(stack, dm, "A pixel.")

    parts = xai.chat_requests()[-1].json["messages"][-1]["content"]
    images = [p for p in parts if p.get("type") == "image_url"]
    assert len(images) == 1 and images[0]["image_url"]["url"].startswith("data:image/png;base64,")


async def test_a_forward_with_a_file_that_is_not_an_image_is_answered_and_names_it(stack: Stack) -> None:
    fake, world, xai = stack.fake, stack.world, stack.xai
    notice = await fake.user_message(
        world.random,
        world.bob,
        "Office closed Friday, details attached",
        attachments=[("details.txt", b"closed all day"), ("map.png", tiny_png(3))],
    )
    dm = fake.dm_channel(world.alice)
    xai.queue_reply(ScriptedReply(text="The office is closed on Friday."))
    await fake.user_message(dm, world.alice, "", forward_of=str(notice["id"]))
    await _answered(stack, dm, "The office is closed on Friday.")

    parts = xai.chat_requests()[-1].json["messages"][-1]["content"]
    [text] = [p["text"] for p in parts if p.get("type") == "text"]
    assert "[forwarded message] Office closed Friday, details attached [with files: details.txt]" in text
    assert len([p for p in parts if p.get("type") == "image_url"]) == 1  # map.png
