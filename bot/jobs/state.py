"""The typed state of a deferred request: its Status, the claimed row as values (Work) and the
result_json envelope (Envelope), whose JSON is written and read here and nowhere else."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from bot.grok import Completion, Usage
from bot.platform import Place

EXPIRY = timedelta(hours=24)  # xAI keeps a deferred result this long


class Status(StrEnum):
    """Where a deferred_request row is in the state machine drawn in bot.jobs."""

    PENDING = "pending"
    FETCHED = "fetched"
    GONE = "gone"
    DELIVERING = "delivering"
    DELIVERED = "delivered"
    EXPIRED = "expired"
    FAILED = "failed"


OPEN = (Status.PENDING, Status.FETCHED, Status.GONE, Status.DELIVERING)


class Gone(StrEnum):
    """Why a request went to Status.GONE (kept in the row's `error`)."""

    EXPIRED = "expired"  # not answered within EXPIRY
    LOST = "lost"  # xAI no longer knows it (404)


@dataclass(frozen=True)
class Envelope:
    """A row's result_json: the completion, stored before anything is posted (xAI serves it once),
    then the delivery's progress. Each step makes a new envelope; the repository stores it."""

    completion: Completion | None = None
    parts: tuple[str, ...] = ()  # the messages to post, fixed before the first is posted
    posted: tuple[str, ...] = ()  # the ids of the parts posted so far ("" for one that may be lost)
    attempting: int | None = None  # the part being posted, its id not yet recorded
    failures: int = 0  # failed posts so far

    @property
    def final(self) -> Status:
        """What the row becomes once every part is posted: an answer is delivered, a notice that
        there is none (the request expired or was lost) closes it as expired."""
        return Status.DELIVERED if self.completion is not None else Status.EXPIRED

    @property
    def next_part(self) -> str | None:
        return self.parts[len(self.posted)] if len(self.posted) < len(self.parts) else None

    def to_post(self, parts: list[str]) -> Envelope:
        """The parts fixed, none posted yet."""
        return replace(self, parts=tuple(parts), posted=(), attempting=None)

    def attempt(self) -> Envelope:
        """The next part marked as being posted."""
        return replace(self, attempting=len(self.posted))

    def posted_as(self, message_id: str) -> Envelope:
        """The part being posted recorded with its message id."""
        return replace(self, posted=(*self.posted, message_id), attempting=None)

    def interrupted(self, note: str | None) -> Envelope:
        """The attempted part counted as posted without an id (it may be on the platform already),
        followed by `note` as a further part when given."""
        extra = () if note is None else (note,)
        return replace(self, parts=(*self.parts, *extra), posted=(*self.posted, ""), attempting=None)

    def failed(self, *, uncertain: bool) -> Envelope:
        """One more failed post. A refused post did not happen; an uncertain one may have, so its
        attempt mark stays and it is never posted again."""
        return replace(self, failures=self.failures + 1, attempting=self.attempting if uncertain else None)

    def dump(self) -> str | None:
        """The JSON of result_json (None for an empty envelope). `final` is written for the readers
        of earlier versions, which kept it; this one derives it."""
        if self == Envelope():
            return None
        completion = None if self.completion is None else dataclasses.asdict(self.completion)
        return json.dumps(
            {
                "completion": completion,
                "parts": list(self.parts),
                "posted": list(self.posted),
                "final": self.final.value,
                "attempting": self.attempting,
                "failures": self.failures,
            }
        )

    @classmethod
    def load(cls, text: str | None) -> Envelope:
        """The envelope of a stored result_json, including the partial ones earlier versions wrote."""
        data: dict[str, Any] = json.loads(text) if text else {}
        completion = data.get("completion")
        return cls(
            completion=None if completion is None else _completion(completion),
            parts=tuple(data.get("parts", ())),
            posted=tuple(data.get("posted", ())),
            attempting=data.get("attempting"),
            failures=int(data.get("failures", 0)),
        )


@dataclass(frozen=True)
class Work:
    """A claimed deferred_request row, as values (rows never leave the repository)."""

    id: int
    xai_request_id: str
    place: Place
    user_id: str
    conversation_id: int | None
    model: str
    reservation_id: int | None
    status: Status
    attempts: int
    expires_at: datetime
    error: str | None
    claimed_at: datetime
    envelope: Envelope


def _completion(data: dict[str, Any]) -> Completion:
    usage = data.get("usage")
    return Completion(**{**data, "usage": Usage(**usage) if usage is not None else None})
