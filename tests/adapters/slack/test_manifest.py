"""The app manifests grant what the adapter uses: the scope of every Web API method the adapter
calls (found in its code), a feature for every scope that needs one, a subscription for every event
it answers and an answer for every event subscribed, the pairings of features, scopes and events
that Slack enforces, and /grok, events and interactivity reaching the adapter's events path over
HTTP; the Socket Mode manifest is the HTTP one without its URLs."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

import adapters.slack
from adapters.slack.agent import SUGGESTED_PROMPTS
from adapters.slack.app import COMMAND, EVENTS_PATH, LISTENED_EVENTS

# The Slack app's manifests (features, scopes, events): over HTTP (with request URLs), and in Socket Mode.
MANIFEST = Path(adapters.slack.__file__).with_name("manifest.yml")
SOCKET_MANIFEST = Path(adapters.slack.__file__).with_name("manifest.socket.yml")

# Web API method -> the bot scopes that allow it (any one suffices), from the method's page on
# docs.slack.dev/reference/methods. A method the adapter calls that is missing here fails the test.
METHOD_SCOPES: dict[str, set[str]] = {
    "auth.test": set(),  # needs no scope
    "chat.postMessage": {"chat:write"},
    "chat.postEphemeral": {"chat:write"},
    "chat.update": {"chat:write"},
    "chat.delete": {"chat:write"},
    "chat.startStream": {"chat:write"},
    "chat.appendStream": {"chat:write"},
    "chat.stopStream": {"chat:write"},
    # chat:write since 2026-03-05 (changelog "set status scope update"), assistant:write before.
    "assistant.threads.setStatus": {"chat:write", "assistant:write"},
    "assistant.threads.setSuggestedPrompts": {"assistant:write"},
    "conversations.history": {"channels:history", "groups:history", "im:history", "mpim:history"},
    "conversations.replies": {"channels:history", "groups:history", "im:history", "mpim:history"},
    "conversations.open": {"im:write"},  # one person: their DM with the bot
    "users.info": {"users:read"},
    "files.info": {"files:read"},
    "files.getUploadURLExternal": {"files:write"},
    "files.completeUploadExternal": {"files:write"},
}
# Scopes for what is not a Web API call.
OTHER_NEEDS = {
    "commands": "the /grok slash command",
    "files:read": "reading the files people attach (url_private with the bot token)",
    "chat:write.public": "answering /grok in public channels the bot was not invited to",
}
# Event subscription -> the scope Slack requires for it (docs.slack.dev/reference/events).
EVENT_SCOPES = {
    "app_mention": "app_mentions:read",
    "message.im": "im:history",
    "message.channels": "channels:history",
    "message.groups": "groups:history",
    "message.mpim": "mpim:history",
    "assistant_thread_started": "assistant:write",
    "assistant_thread_context_changed": "assistant:write",
    "app_home_opened": "",  # needs no scope (a bot user)
    "app_context_changed": "",  # names no scope; needs the agent view (EVENT_FEATURES)
}
# Scopes Slack accepts only beside a feature (its manifest check: "Assistant:write scope should
# include assistant_view feature"); any one of the features will do.
SCOPE_FEATURES = {
    "assistant:write": ("assistant_view", "agent_view"),
    "commands": ("slash_commands",),
}
# Features that bring a scope: turning on the assistant or agent view adds assistant:write.
FEATURE_SCOPES = {"assistant_view": "assistant:write", "agent_view": "assistant:write"}
# Features Slack accepts only with these events subscribed; under the agent view a conversation
# starts when the Messages tab opens (app_home_opened, tab "messages"), not with
# assistant_thread_started (docs.slack.dev/ai/migrating-to-agent-messaging).
FEATURE_EVENTS = {"assistant_view": {"assistant_thread_started"}, "agent_view": {"app_home_opened"}}
# Events Slack sends only to an app with one of these features ("The agent_view feature must be
# enabled in order to receive this event").
EVENT_FEATURES = {
    "app_context_changed": ("agent_view",),
    "assistant_thread_started": ("assistant_view",),
    "assistant_thread_context_changed": ("assistant_view",),
}
AGENT_DESCRIPTION_CHARS = 300  # Slack's manifest schema: agent_view.agent_description
MAX_PROMPTS = 4  # agent_view.suggested_prompts, and setSuggestedPrompts ("up to four")
BOTH = pytest.mark.parametrize("path", [MANIFEST, SOCKET_MANIFEST], ids=["http", "socket"])


def manifest(path: Path = MANIFEST) -> dict[str, Any]:
    loaded = yaml.safe_load(path.read_text())
    assert isinstance(loaded, dict)
    return loaded


def granted(path: Path = MANIFEST) -> set[str]:
    return set(manifest(path)["oauth_config"]["scopes"]["bot"])


def subscribed(path: Path = MANIFEST) -> set[str]:
    return set(manifest(path)["settings"]["event_subscriptions"]["bot_events"])


def methods_called() -> set[str]:
    """Every `….call("method", …)` in the adapter's code: the one gate of its Web API calls."""
    found: set[str] = set()
    for path in Path(adapters.slack.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "call"
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
            ):
                found.add(node.args[0].value)
    return found


@BOTH
def test_every_method_the_adapter_calls_has_a_granted_scope(path: Path) -> None:
    called = methods_called()
    assert {"chat.postMessage", "chat.startStream", "users.info", "files.completeUploadExternal"} <= called
    unknown = called - set(METHOD_SCOPES)
    assert not unknown, f"look up the scopes of {sorted(unknown)} on docs.slack.dev and add them above"
    scopes = granted(path)
    for method in sorted(called):
        needed = METHOD_SCOPES[method]
        assert not needed or needed & scopes, f"{method} needs one of {sorted(needed)}"


@BOTH
def test_every_granted_scope_is_used_and_has_its_feature(path: Path) -> None:
    features = manifest(path)["features"]
    used = {scope for method in methods_called() for scope in METHOD_SCOPES[method]}
    used |= set(OTHER_NEEDS) | {EVENT_SCOPES.get(event, "") for event in subscribed(path)}
    for scope in sorted(granted(path)):
        assert scope in used, f"{scope} is granted but nothing uses it"
        wanted = SCOPE_FEATURES.get(scope, ())
        assert not wanted or any(features.get(f) for f in wanted), f"{scope} needs one of {wanted}"
    assert features["bot_user"]["display_name"]  # bot scopes need a bot user
    for feature, events in FEATURE_EVENTS.items():
        assert feature not in features or events <= subscribed(path), f"{feature} needs {events}"


@BOTH
def test_features_events_and_scopes_pair_as_slack_requires(path: Path) -> None:
    features, events, scopes = manifest(path)["features"], subscribed(path), granted(path)
    assert "agent_view" in features  # Slack's create-app flow since 2026: the agent view
    assert "assistant_view" not in features  # one messaging experience or the other
    for event, wanted in EVENT_FEATURES.items():
        assert event not in events or any(f in features for f in wanted), f"{event} needs one of {wanted}"
    for feature, scope in FEATURE_SCOPES.items():
        assert feature not in features or scope in scopes, f"{feature} brings {scope}"
    agent = features["agent_view"]
    assert set(agent) <= {"agent_description", "suggested_prompts", "actions"}  # Slack's schema
    assert 0 < len(agent["agent_description"]) <= AGENT_DESCRIPTION_CHARS


@BOTH
def test_the_suggested_prompts_are_the_adapters(path: Path) -> None:
    prompts = manifest(path)["features"]["agent_view"]["suggested_prompts"]
    assert prompts == [dict(p) for p in SUGGESTED_PROMPTS]  # the same when the Messages tab opens
    assert 0 < len(prompts) <= MAX_PROMPTS
    assert all(set(p) == {"title", "message"} and p["title"] and p["message"] for p in prompts)
    assert any("search" in p["message"].lower() for p in prompts)


@BOTH
def test_subscribed_events_and_the_adapters_listeners_match(path: Path) -> None:
    events = subscribed(path)
    assert {"app_mention", "message.im", "message.channels", "message.groups", "message.mpim"} <= events
    assert {"app_home_opened", "app_context_changed"} <= events  # the agent view's
    # message.im, message.channels, ... all arrive as "message" events.
    assert {event.split(".")[0] for event in events} == set(LISTENED_EVENTS)
    scopes = granted(path)
    for event in sorted(events):
        assert event in EVENT_SCOPES, f"look up the scope of the {event} event and add it above"
        assert not EVENT_SCOPES[event] or EVENT_SCOPES[event] in scopes, (
            f"{event} needs {EVENT_SCOPES[event]}"
        )
    # Direct messages reach the app only where people may write to it.
    home = manifest(path)["features"]["app_home"]
    assert home["messages_tab_enabled"] and not home["messages_tab_read_only_enabled"]


def test_grok_events_and_interactivity_reach_the_events_path() -> None:
    loaded = manifest()
    [command] = loaded["features"]["slash_commands"]
    assert command["command"] == COMMAND
    assert command["should_escape"] is True  # mentions arrive as <@U…|name>: `quota user:@someone`
    settings = loaded["settings"]
    urls = [
        command["url"],
        settings["event_subscriptions"]["request_url"],
        settings["interactivity"]["request_url"],
    ]
    assert [urlsplit(url).path for url in urls] == [EVENTS_PATH] * 3
    assert all(urlsplit(url).scheme == "https" for url in urls)  # Slack posts to HTTPS only
    assert settings["interactivity"]["is_enabled"] is True  # the feedback buttons' clicks
    assert settings["socket_mode_enabled"] is False  # HTTP unless SLACK_APP_TOKEN is set


def urls_removed(value: Any) -> Any:
    """`value` without its request URLs (slash commands' `url`, `request_url`)."""
    if isinstance(value, dict):
        return {k: urls_removed(v) for k, v in value.items() if k not in ("url", "request_url")}
    if isinstance(value, list):
        return [urls_removed(v) for v in value]
    return value


def test_the_socket_mode_manifest_is_the_http_one_without_urls() -> None:
    http, socket = manifest(MANIFEST), manifest(SOCKET_MANIFEST)
    assert socket["settings"]["socket_mode_enabled"] is True  # events over the app-level token's socket
    assert urls_removed(socket) == socket  # nothing to edit before pasting it
    assert "YOUR-HOST" not in SOCKET_MANIFEST.read_text() and "YOUR-HOST" in MANIFEST.read_text()
    http["settings"]["socket_mode_enabled"] = True
    assert urls_removed(http) == socket
    assert socket["settings"]["interactivity"]["is_enabled"] is True  # the feedback buttons' clicks
