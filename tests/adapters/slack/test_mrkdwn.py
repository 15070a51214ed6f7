"""The Markdown → mrkdwn converter: deterministic, escaping, code kept verbatim."""

from __future__ import annotations

import pytest

from adapters.slack.mrkdwn import escape, markdown_to_mrkdwn, truncate, unescape


@pytest.mark.parametrize(
    ("markdown", "mrkdwn"),
    [
        ("**bold** and __bold__", "*bold* and *bold*"),
        ("*italic* and _italic_", "_italic_ and _italic_"),
        ("***both***", "*_both_*"),
        ("~~gone~~", "~gone~"),
        ("snake_case_name and 2 * 3 * 4", "snake_case_name and 2 * 3 * 4"),
        ("[the docs](https://e.com/a?b=1&c=2)", "<https://e.com/a?b=1&amp;c=2|the docs>"),
        ("[**bold** label](http://x.y)", "<http://x.y|bold label>"),
        ("![a cat](http://x.y/cat.png)", "<http://x.y/cat.png|a cat>"),
        ("ask <@U123> in <#C1|general> <!here>", "ask <@U123> in <#C1|general> <!here>"),
        ("a < b && c > d", "a &lt; b &amp;&amp; c &gt; d"),
        ("`x < **y**`", "`x &lt; **y**`"),
        ("# Title **big**", "*Title big*"),
        ("### Sub", "*Sub*"),
        ("- one\n- two\n  - nested", "• one\n• two\n    • nested"),
        ("* star item", "• star item"),
        ("1. first\n2) second", "1. first\n2. second"),
        ("- [ ] todo\n- [x] done", "☐ todo\n☑ done"),
        ("> quoted **text**", "> quoted *text*"),
        ("---", "──────────"),
        ("中文**粗体**中文", "中文 *粗体* 中文"),
        ("plain text", "plain text"),
    ],
)
def test_inline_and_block_conversion(markdown: str, mrkdwn: str) -> None:
    assert markdown_to_mrkdwn(markdown) == mrkdwn


def test_code_blocks_are_verbatim_and_drop_the_language() -> None:
    markdown = "Run:\n```python\nif a < b and **c**:\n    print('_x_')\n```\nDone **now**"
    assert markdown_to_mrkdwn(markdown) == (
        "Run:\n```\nif a &lt; b and **c**:\n    print('_x_')\n```\nDone *now*"
    )


def test_an_unclosed_code_block_is_closed() -> None:
    assert markdown_to_mrkdwn("```\ncode *here*") == "```\ncode *here*\n```"


def test_tables_become_aligned_code_blocks() -> None:
    table = "| name | qty |\n|------|----:|\n| apple | 3 |\n| kiwi | 12 |\n\nafter"
    assert markdown_to_mrkdwn(table) == ("```\nname  | qty\n------+----\napple | 3\nkiwi  | 12\n```\n\nafter")


def test_conversion_is_deterministic() -> None:
    text = "# H\n**a** _b_ `c` [d](http://e) ~~f~~\n```js\nx\n```\n| a | b |\n|---|---|\n| 1 | 2 |"
    assert markdown_to_mrkdwn(text) == markdown_to_mrkdwn(text)


def test_escape_round_trip_and_truncate() -> None:
    assert unescape(escape("a & <b> &amp;")) == "a & <b> &amp;"
    assert unescape("&lt;@U1&gt; &amp;lt;") == "<@U1> &lt;"
    assert truncate("short", 10) == "short"
    cut = truncate("word " * 100, 50)
    assert len(cut) <= 50 and cut.endswith("…")
    assert truncate("a &amp; b " * 10, 11) == "a &amp; b…"
    assert not truncate("see <https://example.com/long/path|link>", 20).count("<")
