"""What search adds, without the network: citations held back until whole, sources and code as
Markdown, tool calls as activities and the status line they make, the tools a place allows, and
the `settings` command's values."""

from __future__ import annotations

import pytest

from bot.errors import BadInput
from bot.grok import PriceBook, Source, ToolCall, ToolOutput
from bot.place_settings import settings_change
from bot.platform import Activity, Place, SourceLink
from bot.search import domains_value, handles_value, tools_for, tools_value
from bot.store import PlaceSettings
from bot.streaming import EditBudgets, StreamWriter, activity_of, code_appendix, links_of, split_message
from bot.streaming.appendix import link_markdown, sources_markdown
from bot.streaming.layout import Layout, settled
from tests.fakes.platform import FakePlatform

PLACE = Place("fake", "W1", "C1", "T1")
MARKER = "[[1]](https://x.ai/news)"

# -- a citation is shown whole or not at all ---------------------------------------------------------


@pytest.mark.parametrize("cut", range(1, len(MARKER)))
def test_an_interim_edit_never_shows_half_a_citation(cut: int) -> None:
    layout = Layout(2000)
    layout.append("Grok 4.7 shipped " + MARKER[:cut])
    assert layout.interim() == "Grok 4.7 shipped "
    layout.showed("Grok 4.7 shipped ")
    layout.append(MARKER[cut:] + " today")
    assert layout.interim() == "Grok 4.7 shipped " + MARKER + " today"


def test_what_is_held_back_is_only_a_link_still_being_written() -> None:
    assert settled("an array[i] = 3") == len("an array[i] = 3")  # not a link: shown
    assert settled("see [the docs](https://docs") == len("see ")
    assert settled("line one [\nline two") == len("line one [\nline two")  # a link spans no line end
    assert settled("done [[2]](https://a.b/c).") == len("done [[2]](https://a.b/c).")


def test_the_suffix_follows_the_text_and_is_split_like_it_without_cutting_a_link() -> None:
    layout = Layout(80)
    layout.append("word " * 12)
    layout.set_suffix(
        "\n\n" + sources_markdown([SourceLink(f"https://example.com/page/{n}") for n in range(4)])
    )
    bodies = []
    while (part := layout.overflow()) is not None:
        bodies.append(part.body)
        layout.sealed(part)
    bodies.append(layout.final())
    assert all(len(body) <= 80 for body in bodies)
    assert sum(body.count("](<https://example.com/page/") for body in bodies) == 4  # each link whole
    assert layout.text == "word " * 12  # the sources are not the answer's text


# -- sources and code as Markdown ---------------------------------------------------------------------


def test_sources_are_numbered_titled_links_that_suppress_previews() -> None:
    links = [
        SourceLink("https://en.wikipedia.org/wiki/Grok_(chatbot)", "Grok [chatbot]"),
        SourceLink("https://x.com/xai/status/123"),
        SourceLink("https://www.example.com/a/b/"),
    ]
    assert sources_markdown(links) == (
        "**Sources**\n"
        "1. [Grok \\[chatbot\\]](<https://en.wikipedia.org/wiki/Grok_%28chatbot%29>)\n"
        "2. [@xai on X](<https://x.com/xai/status/123>)\n"
        "3. [example.com/a/b](<https://www.example.com/a/b/>)"
    )
    assert sources_markdown([]) == ""
    # The layout's link rule recognises each, so no split falls inside one.
    assert all(len(part) <= 60 for part in split_message(sources_markdown(links * 3), 60))
    assert link_markdown(SourceLink("https://a.b/c d")) == "[a.b/c d](<https://a.b/c%20d>)"


def test_x_posts_are_x_com_links_and_sources_are_not_repeated() -> None:
    sources = [
        Source("https://twitter.com/xai/status/1"),
        Source("https://x.com/xai/status/1", "A post"),
        Source("https://a.b/"),
    ]
    assert links_of(sources) == (SourceLink("https://x.com/xai/status/1"), SourceLink("https://a.b/"))


def test_code_runs_are_code_blocks_with_their_output() -> None:
    run = ToolCall(
        "c1",
        "code",
        "code_execution",
        "completed",
        code="print('```')",
        outputs=(ToolOutput("logs", "```\n"),),
    )
    assert code_appendix([run, ToolCall("w", "web", "web_search", "completed", "q")]) == (
        "\n\n````python\nprint('```')\n````\nOutput:\n````text\n```\n````"
    )
    assert code_appendix([]) == ""


# -- tool calls as activities -----------------------------------------------------------------------------


def test_each_tool_call_says_what_it_does_while_it_runs_and_after() -> None:
    def title(kind: str, name: str, status: str, query: str = "") -> str:
        return activity_of(ToolCall("1", kind, name, status, query)).title  # type: ignore[arg-type]

    assert (
        title("web", "web_search", "in_progress") == "🔎 Searching the web"
    )  # xAI names the query at the end
    assert title("web", "web_search", "completed", "grok 4.7") == "🔎 Searched the web for “grok 4.7”"
    assert title("x", "x_keyword_search", "in_progress", "from:xai") == "🔎 Searching X for “from:xai”"
    assert title("x", "x_user_search", "in_progress") == "🔎 Looking up people on X"
    assert title("web", "browse_page", "completed", "https://www.x.ai/company/") == "🌐 Read x.ai/company"
    assert title("code", "code_execution", "in_progress") == "🧮 Running code"
    assert activity_of(ToolCall("1", "x", "x_keyword_search", "failed", "q")).status == "error"
    long = title("x", "x_keyword_search", "in_progress", "word " * 40)
    assert len(long) < 110 and long.endswith("…”")


async def test_the_status_line_shows_the_search_in_progress_over_the_thinking() -> None:
    platform = FakePlatform()
    writer = StreamWriter(platform, PLACE, budgets=EditBudgets(), interval=0.05)
    await writer.open()
    await writer.status("💭 Thinking… 2 s")
    await writer.activity(Activity("a", "x", "🔎 Searching X for “q”", "in_progress"))
    await writer.status("💭 Thinking… 4 s")  # the thinking ticks on beneath the search
    await writer.activity(Activity("a", "x", "🔎 Searched X for “q”", "complete"))
    await writer.finish()
    shown = [e.text for e in platform.events if e.kind == "status"]
    assert shown == [
        "💭 Thinking… 2 s",
        "🔎 Searching X for “q”",
        "🔎 Searching X for “q”",
        "💭 Thinking… 4 s",
    ]


# -- the tools a place allows ------------------------------------------------------------------------------


def test_a_place_searches_the_web_and_x_unless_an_admin_says_otherwise() -> None:
    default = tools_for(PlaceSettings())
    assert default.kinds == ("web", "x")
    assert tools_for(PlaceSettings(tools="none")).kinds == ()
    assert tools_for(PlaceSettings(tools="web,code"), "off").kinds == ("code",)
    filtered = tools_for(PlaceSettings(search_domains="-a.com,-b.org", x_handles="xai"), "auto")
    assert filtered.web is not None and filtered.web.excluded_domains == ("a.com", "b.org")
    assert filtered.x is not None and filtered.x.allowed_handles == ("xai",)
    assert tools_for(PlaceSettings(), "x").kinds == ("x",)
    with pytest.raises(BadInput, match="Web search is turned off here"):
        tools_for(PlaceSettings(tools="x"), "web")


def test_setting_values_are_checked_as_xai_checks_them() -> None:
    assert tools_value("X, web") == "web,x" and tools_value("NONE") == "none"
    assert domains_value("https://A.com/, b.org") == "a.com,b.org"
    assert domains_value("-a.com,-b.org") == "-a.com,-b.org"
    assert handles_value("@xai, grok,XAI") == "xai,grok"
    for bad, words in (
        (lambda: tools_value("web,bing"), "`tools` accepts"),
        (lambda: domains_value("a.com,-b.org"), "not both"),
        (lambda: domains_value(",".join(f"d{n}.com" for n in range(6))), "at most 5"),
        (lambda: handles_value("not a handle!"), "not an X handle"),
    ):
        with pytest.raises(BadInput, match=words):
            bad()


def test_the_settings_command_reads_scope_reset_and_a_known_model() -> None:
    prices = PriceBook()
    change = settings_change({"scope": "workspace", "tools": "web", "model": "default"}, "", prices)
    assert change.whole_workspace and change.changes == {"tools": "web", "model": None}
    assert settings_change({}, "Be brief.", prices).changes == {"system_prompt": "Be brief."}
    with pytest.raises(BadInput, match="`scope` accepts"):
        settings_change({"scope": "server"}, "", prices)
    with pytest.raises(BadInput, match="`model` accepts"):
        settings_change({"model": "gpt-5"}, "", prices)
    with pytest.raises(BadInput, match="at most 4,000"):
        settings_change({}, "x" * 4001, prices)
