"""The Grok client the streaming benchmarks use: it notes when each text delta reached the bot."""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator
from typing import ClassVar

from bot.grok import ChatRequest, ContentDelta, GrokClient, StreamEvent


class TimedGrok(GrokClient):
    """`arrivals[conv_id]`: (time, answer length so far) per delta; `marks`: (first, last, tokens)
    per finished answer, shared by the instances of one run (clear it between runs)."""

    marks: ClassVar[list[tuple[float, float, int]]] = []

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.arrivals: dict[str, list[tuple[float, int]]] = {}

    async def stream(self, request: ChatRequest) -> AsyncGenerator[StreamEvent, None]:
        arrivals = self.arrivals.setdefault(request.conv_id or "", [])
        start = len(arrivals)
        length = 0
        try:
            async for event in super().stream(request):
                if type(event) is ContentDelta:
                    length += len(event.text)
                    arrivals.append((time.perf_counter(), length))
                yield event
        finally:  # the engine stops reading at StreamEnd
            mine = arrivals[start:]
            first, last = (mine[0][0], mine[-1][0]) if mine else (0.0, 0.0)
            self.marks.append((first, last, len(mine)))
