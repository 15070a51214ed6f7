"""The app manifest asks for what the adapter uses: scopes, events, /grok, interactivity, one URL."""

from __future__ import annotations

from pathlib import Path

import adapters.slack

MANIFEST = (Path(adapters.slack.__file__).parent / "manifest.yml").read_text()


def test_the_manifest_names_every_scope_event_and_url() -> None:
    for scope in (
        "app_mentions:read", "chat:write", "commands", "files:read", "files:write", "im:history",
        "channels:history", "groups:history", "mpim:history", "users:read", "assistant:write",
    ):  # fmt: skip
        assert f"- {scope} " in MANIFEST or MANIFEST.rstrip().endswith(f"- {scope}"), scope
    for event in ("app_mention", "message.im", "message.channels", "message.groups", "message.mpim"):
        assert f"      - {event}\n" in MANIFEST, event
    assert "command: /grok" in MANIFEST
    assert MANIFEST.count("url: https://YOUR-HOST/slack/events") == 3  # events, /grok, interactivity
    assert "socket_mode_enabled: false" in MANIFEST
    assert "is_enabled: true" in MANIFEST
