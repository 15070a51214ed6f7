"""The layout of a streamed answer, without time: where text is cut (paragraph, line, word, never
inside a link), code blocks closed and reopened across messages, and what each message shows."""

from __future__ import annotations

import random
import re

import pytest

from bot.streaming import cut_point, split_message
from bot.streaming.layout import Layout, Page, Part, open_fence


def fences_balanced(part: str) -> bool:
    return open_fence(part) is None


# -- split_message ----------------------------------------------------------------------------------


def test_short_text_is_one_part() -> None:
    assert split_message("hello world", 100) == ["hello world"]


def test_split_prefers_paragraphs_and_keeps_every_character() -> None:
    text = "\n\n".join(f"Paragraph {i} " + "word " * 30 for i in range(10))
    parts = split_message(text, 400)
    assert all(len(p) <= 400 for p in parts)
    assert "".join(parts) == text
    assert all(p.endswith("\n\n") for p in parts[:-1])


def test_split_never_leaves_a_code_block_open() -> None:
    code = "```python\n" + "".join(f"value_{i} = {i} * 2\n" for i in range(200)) + "```\n"
    text = "Here is the code:\n\n" + code + "\nThat is all."
    parts = split_message(text, 500)
    assert len(parts) > 3
    assert all(len(p) <= 500 for p in parts)
    assert all(fences_balanced(p) for p in parts)
    for part in parts[1:-1]:
        assert part.startswith("```python\n")
    # Removing the added closing/reopening fences gives back the original text.
    rebuilt = parts[0]
    for part in parts[1:]:
        rebuilt = rebuilt.removesuffix("\n```") + "\n" + part.removeprefix("```python\n")
    assert rebuilt.replace("\n\n", "\n") == text.replace("\n\n", "\n")


def test_split_cuts_unbroken_text_hard() -> None:
    parts = split_message("x" * 1000, 300)
    assert [len(p) for p in parts] == [300, 300, 300, 100]


def test_split_refuses_a_limit_too_small_to_split_sensibly() -> None:
    with pytest.raises(ValueError):
        split_message("x" * 100, 39)


# -- cut_point --------------------------------------------------------------------------------------


def test_cut_prefers_a_paragraph_then_a_line_then_a_word_end() -> None:
    assert cut_point("aaaa bbbb\n\ncccc dddd\neeee ffff", 26) == 11
    assert cut_point("aaaa bbbb\ncccc dddd eeee ffff", 26) == 10
    assert cut_point("aaaa bbbb cccc dddd eeee ffff", 26) == 25


def test_cut_keeps_at_least_a_third_of_the_window() -> None:
    assert cut_point("ab\n\n" + "x" * 100, 30) == 30  # the paragraph end is too early: cut hard


def test_cut_never_falls_inside_a_link() -> None:
    text = "Read more about it in " + "[the official guide to it](https://example.com/guide)" + " and on."
    cut = cut_point(text, 40)
    assert cut == len("Read more about it in ")  # before the link, not at a space in its text
    citation = "as it was reported " + "[[12]](https://x.ai/news/a-long-path)" + " by them"
    assert cut_point(citation, 30) == len("as it was reported ")  # before it: it crosses the limit


def test_cut_goes_after_a_link_that_ends_inside_the_window() -> None:
    text = "See [the guide](https://e.x/g) for details and more words after it"
    assert cut_point(text, 40) == len("See [the guide](https://e.x/g) for ")


def test_a_link_still_being_written_is_not_cut_either() -> None:
    so_far = "The answer cites " + "[the source of the claim](https://exa"  # the rest not yet streamed
    assert cut_point(so_far, 40) == len("The answer cites ")


def test_a_link_too_long_to_keep_whole_is_cut_at_a_word_end() -> None:
    text = "[" + "word " * 40 + "](https://e.x)"
    assert cut_point(text, 60) == 56  # after the last word that fits, as without links


def test_a_stray_bracket_does_not_shield_a_link_after_it() -> None:
    text = "[stray " + "x" * 30 + " [a b c d e](u) tail words here"
    cut = cut_point(text, 41)
    assert cut == len("[stray " + "x" * 30 + " ")


# -- Page and Layout ---------------------------------------------------------------------------------


def test_a_code_block_cut_is_closed_and_reopened_with_its_language() -> None:
    text = "Intro\n~~~~rust\n" + "let x = 1;\n" * 20
    part = Page().seal(text, 80)
    assert part.body.endswith("\n~~~~") and open_fence(part.body) is None
    assert part.next.carry == "~~~~rust\n"
    assert part.next.body(text).startswith("~~~~rust\nlet x = 1;\n")


def test_the_layout_shows_the_prefix_then_the_text_and_nothing_twice() -> None:
    layout = Layout(100)
    assert layout.interim() is None  # nothing to show
    layout.set_prefix("_Thought for 3 s._\n\n")
    layout.append("Hello")
    layout.set_prefix("ignored once text arrived")
    body = layout.interim()
    assert body == "_Thought for 3 s._\n\nHello"
    layout.showed(body)
    assert layout.interim() is None  # already shown
    assert layout.shown_text == "Hello" and layout.started
    layout.append(" world")
    assert layout.shown_text == "Hello"  # not shown yet
    assert layout.final() == "_Thought for 3 s._\n\nHello world"


def test_a_blank_interim_body_is_not_shown_but_a_final_one_is() -> None:
    layout = Layout(100)
    layout.append("\n\n")
    assert layout.interim() is None
    assert layout.final() == "\n\n"


def test_the_layout_overflows_into_a_new_message_only_past_the_limit() -> None:
    layout = Layout(50)
    layout.append("word " * 10)
    assert layout.overflow() is None  # exactly 50
    layout.append("more")
    part = layout.overflow()
    assert part is not None and len(part.body) <= 50
    layout.sealed(part)
    assert layout.page == part.next and layout.page.shown == ""
    assert layout.shown_text == layout.text[: part.next.start]  # the sealed message shows it


def test_leaving_a_blocked_message_goes_on_after_what_it_showed() -> None:
    layout = Layout(200)
    layout.append("Code:\n```py\nx = 1\n")
    layout.showed(layout.final())
    layout.append("y = 2\n```\n")
    shown = layout.leave()
    assert shown == "Code:\n```py\nx = 1\n"  # the left message keeps its text
    assert layout.page == Page(len(shown), "```py\n")  # the open block goes on in the next one
    assert layout.final() == "```py\ny = 2\n```\n"


def test_leaving_a_message_that_showed_nothing_keeps_its_place() -> None:
    layout = Layout(200)
    layout.sealed(Part("", Page(0, "```\n")))
    layout.append("code\n")
    assert layout.leave() == ""
    assert layout.page == Page(0, "```\n")


# -- properties, on random answers ----------------------------------------------------------------

WORDS = ("a", "the", "answer", "streaming", "x" * 25, "é", "`tick`", "\n", "\n\n", "- item\n")
BLOCKS = ("\n```python\n", "\n```\n", "\n~~~\n", "\n````js\n", "\n````\n", "\n  ```\n")
LINKS = ("[the guide](https://e.x/g)", "[[3]](https://x.ai/s/3)", "[see [1] here](http://a.b)")
PREFIXES = ("", "_Thought for 3 s._\n\n")


def random_answer(rng: random.Random, *, links: bool = True) -> str:
    tokens = []
    for _ in range(rng.randint(1, 300)):
        roll = rng.random()
        if roll < 0.06:
            tokens.append(rng.choice(BLOCKS))
        elif roll < 0.12 and links:
            tokens.append(rng.choice(LINKS))
        else:
            tokens.append(rng.choice(WORDS))
    return " ".join(tokens)


def random_deltas(rng: random.Random, text: str) -> list[str]:
    deltas, at = [], 0
    while at < len(text):
        size = rng.randint(1, 12)
        deltas.append(text[at : at + size])
        at += size
    return deltas


def marker_of(carry: str) -> str:
    match = re.match(r"`+|~+", carry)
    assert match is not None
    return match.group()


def stream_layout(rng: random.Random, prefix: str, text: str, limit: int, *, leave: float = 0.0):  # type: ignore[no-untyped-def]
    """Feed `text` through a Layout as a writer would, edits at random moments: every message as
    (the page it started as, its body, the page after it, whether it was sealed)."""
    layout = Layout(limit)
    layout.set_prefix(prefix)
    messages = []
    for delta in random_deltas(rng, text):
        layout.append(delta)
        if rng.random() < 0.3:  # an edit goes out now
            while (part := layout.overflow()) is not None:
                messages.append((layout.page, part.body, part.next, True))
                layout.sealed(part)
            body = layout.interim()
            if body is not None:
                assert len(body) <= limit
                assert body.startswith(layout.page.shown)  # an edit only adds to what a message shows
                layout.showed(body)
            if rng.random() < leave and layout.page.shown:
                page = layout.page
                messages.append((page, layout.leave(), layout.page, False))
    while (part := layout.overflow()) is not None:
        messages.append((layout.page, part.body, part.next, True))
        layout.sealed(part)
    messages.append((layout.page, layout.final(), None, True))
    return messages


@pytest.mark.parametrize("seed", range(300))
def test_streamed_messages_fit_close_their_code_blocks_and_rebuild_the_text(seed: int) -> None:
    rng = random.Random(seed)
    prefix, text, limit = rng.choice(PREFIXES), random_answer(rng), rng.randint(60, 400)
    messages = stream_layout(rng, prefix, text, limit, leave=0.05)
    full, segments = prefix + text, []
    where = [(page.start, page.carry) for page, _, _, _ in messages]  # where each message begins
    assert where[0] == (0, "")
    for page, body, after, sealed in messages:
        assert len(body) <= limit
        assert body.startswith(page.carry)
        end = len(full) if after is None else after.start
        segment, inner = full[page.start : end], body[len(page.carry) :]
        if sealed and after is not None and after.carry:  # a block cut here: closed, then reopened
            assert open_fence(body) is None
            assert inner == f"{segment.rstrip(chr(10))}\n{marker_of(after.carry)}"
            assert after.carry.startswith(marker_of(after.carry))
        else:
            assert inner == segment
        if sealed and after is not None:
            assert open_fence(body) is None  # no code block left open in a finished message
        segments.append(segment)
    assert "".join(segments) == full
    assert where[1:] == [(after.start, after.carry) for _, _, after, _ in messages[:-1]]  # in sequence


@pytest.mark.parametrize("seed", range(200))
def test_streaming_seals_the_messages_that_splitting_the_whole_answer_gives(seed: int) -> None:
    rng = random.Random(seed)
    prefix, text, limit = rng.choice(PREFIXES), random_answer(rng), rng.randint(120, 400)
    bodies = [body for _, body, _, _ in stream_layout(rng, prefix, text, limit)]
    assert bodies == split_message(prefix + text, limit)


@pytest.mark.parametrize("seed", range(200))
def test_no_link_is_broken_across_messages(seed: int) -> None:
    rng = random.Random(seed)
    text, limit = random_answer(rng), rng.randint(120, 400)
    messages = stream_layout(rng, "", text, limit)
    cuts = [after.start for _, _, after, _ in messages if after is not None]
    spans = [(m.start(), m.end()) for link in LINKS for m in re.finditer(re.escape(link), text)]
    for start, end in spans:
        assert not any(start < cut < end for cut in cuts), text[start:end]
    assert sum(body.count(link) for _, body, _, _ in messages for link in LINKS) == len(spans)
