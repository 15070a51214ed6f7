"""Slack's refusals as types: chosen by method and code in one place, each with what it means for
the person (user_text) where it means something to them; stream support kept per workspace."""

from __future__ import annotations

import pytest

from adapters.slack.pacing import Pacer
from adapters.slack.refusals import (
    BlocksRefused,
    MessageTooLong,
    NotAMember,
    SlackRefused,
    StoppedByUser,
    StreamGone,
    StreamNotHere,
    StreamsUnavailable,
    refusal,
)
from adapters.slack.streams import Streams
from bot.errors import AnswerStopped
from bot.platform import Place


@pytest.mark.parametrize(
    ("method", "code", "kind"),
    [
        ("chat.appendStream", "stopped_by_user", StoppedByUser),
        ("chat.postMessage", "msg_too_long", MessageTooLong),
        ("chat.stopStream", "invalid_blocks", BlocksRefused),
        ("chat.update", "msg_blocks_too_long", BlocksRefused),
        ("chat.postMessage", "not_in_channel", NotAMember),
        ("chat.startStream", "channel_not_found", NotAMember),
        ("chat.appendStream", "message_not_in_streaming_state", StreamGone),
        ("chat.stopStream", "cant_update_message", StreamGone),
        ("chat.startStream", "missing_recipient_user_id", StreamNotHere),
        ("chat.startStream", "invalid_arguments", StreamNotHere),
        ("chat.startStream", "unknown_method", StreamsUnavailable),
        ("chat.startStream", "not_allowed_token_type", StreamsUnavailable),
        # The same codes from other methods mean nothing special.
        ("chat.postMessage", "invalid_arguments", SlackRefused),
        ("chat.update", "cant_update_message", SlackRefused),
        ("users.info", "user_not_found", SlackRefused),
    ],
)
def test_a_refusal_is_typed_by_method_and_code(method: str, code: str, kind: type[SlackRefused]) -> None:
    refused = refusal(method, code)
    assert type(refused) is kind
    assert (refused.method, refused.error) == (method, code)


def test_refusals_that_mean_something_to_a_person_say_it_and_the_rest_stay_in_the_log() -> None:
    not_here = refusal("chat.postMessage", "not_in_channel")
    assert not_here.user_text == "I am not in this channel; invite me with `/invite @Grok`."
    assert "chat.postMessage" in str(not_here) and "not_in_channel" in str(not_here)
    assert "chat.postMessage" not in not_here.user_text  # internals stay in the log
    assert "SLACK_BOT_TOKEN" in refusal("auth.test", "invalid_auth").user_text
    assert refusal("chat.update", "cant_update_message").user_text == ""  # the wording says it generally
    stopped = refusal("chat.appendStream", "stopped_by_user")
    assert isinstance(stopped, AnswerStopped)  # the core ends the answer on it


def test_streams_are_withdrawn_per_workspace_and_only_when_slack_offers_none() -> None:
    streams = Streams(Pacer())
    here, elsewhere = Place("slack", "T1", "C1", "1.0"), Place("slack", "T2", "C1", "1.0")
    assert streams.may_start(here) and streams.offered_everywhere
    withdrawn = refusal("chat.startStream", "unknown_method")
    assert isinstance(withdrawn, StreamsUnavailable)
    streams.withdraw("T1", withdrawn)
    assert not streams.offered("T1") and not streams.may_start(here)
    assert streams.offered("T2") and streams.may_start(elsewhere)
    assert not streams.offered_everywhere  # what the platform's (placeless) capabilities report
