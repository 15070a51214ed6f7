"""Native streams' state: whether Slack offers them, per workspace, and the streams open now (every
stream is started and stopped by Tier 2 methods, so a busy workspace answers with edits instead).
"""

from __future__ import annotations

import logging
import time

from adapters.slack.pacing import Pacer
from adapters.slack.refusals import StreamsUnavailable
from bot.platform import Place

log = logging.getLogger(__name__)

STREAM_LIFETIME_S = 300.0  # observed: Slack ends a stream about five minutes after its start


class Streams:
    def __init__(self, pacer: Pacer, *, offered: bool = True) -> None:
        self._pacer = pacer
        self._offered = offered
        self._withdrawn: set[str] = set()  # workspaces where Slack said it offers no streams
        # Streams started and not yet stopped, per workspace: ts -> when it started. A stream the
        # engine leaves behind is forgotten after STREAM_LIFETIME_S (Slack ends it by then too).
        self._open: dict[str, dict[str, float]] = {}
        # Answers told they may start a stream that have not started it yet, per workspace: their
        # starts and stops are spoken for (the start may first wait for the channel's posting limit).
        self._starting: dict[str, int] = {}

    def offered(self, workspace: str) -> bool:
        """Whether answers in `workspace` may try a native stream at all."""
        return self._offered and workspace not in self._withdrawn

    @property
    def offered_everywhere(self) -> bool:
        """No workspace has been refused streams (the platform's capabilities are not per place)."""
        return self._offered and not self._withdrawn

    def withdraw(self, workspace: str, refusal: StreamsUnavailable) -> None:
        """Slack offers `workspace` no streams: its answers are posted and edited from now on."""
        if workspace not in self._withdrawn:
            log.warning("Slack refused native streaming (%s); using chat.update from now on", refusal.error)
            self._withdrawn.add(workspace)

    def may_start(self, place: Place) -> bool:
        """Whether a new native stream can start now and still be stopped in time: every stream
        starts with one chat.startStream and ends with one chat.stopStream (both Tier 2, 20 a
        minute), so busy workspaces answer with chat.postMessage and chat.update instead."""
        if not self.offered(place.workspace):
            return False
        streams = self._open.setdefault(place.workspace, {})
        now = time.monotonic()
        for ts in [ts for ts, started in streams.items() if now - started > STREAM_LIFETIME_S]:
            del streams[ts]
        starts = self._pacer.headroom("chat.startStream", place.workspace)
        stops = self._pacer.headroom("chat.stopStream", place.workspace)
        starting = self._starting.get(place.workspace, 0)
        if starts > starting and stops > len(streams) + starting:
            self._starting[place.workspace] = starting + 1  # until `start_done`
            return True
        return False

    def start_done(self, place: Place) -> None:
        """An answer that `may_start` let start a stream started it (see `opened`), or did not."""
        self._starting[place.workspace] = max(0, self._starting.get(place.workspace, 0) - 1)

    def opened(self, place: Place, ts: str) -> None:
        self._open.setdefault(place.workspace, {})[ts] = time.monotonic()

    def closed(self, place: Place, ts: str) -> None:
        """A stream ended (stopped, or gone server-side)."""
        self._open.get(place.workspace, {}).pop(ts, None)
