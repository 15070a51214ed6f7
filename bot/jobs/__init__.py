"""Deferred completions (submit, poll, store, deliver once) and the in-process timer that wakes the
database claimers of deferred requests and digest slots, with a heartbeat per tick.

State machine of a deferred_request row; every arrow is one conditional UPDATE on (id, status,
lease_owner) that also renews the lease, so a step whose lease was taken over matches no row:

    pending --202/error--> pending (next_poll_at backs off 2 s -> 30 s, lease dropped)
    pending --200--> fetched  (the completion is stored BEFORE anything is posted: xAI serves it once)
    pending --404 or past expires_at--> gone
    fetched --the parts to post fixed--> delivering
    gone    --reservation released (idempotent)--> delivering (one part: the "expired" notice)
    delivering --each part: mark "attempting i", post, record its id; then the turn recorded and
               the quota settled (both idempotent)--> delivered | expired
    delivering --5th failed post--> failed (reservation released: an answer nobody saw is neither
               charged nor kept in the conversation)

Delivery is at most once per part. Before part i is posted the row says "attempting i"; after, it
holds the message id. A successor that finds an attempt without an id cannot know whether the post
went out, so it does not repeat it: it posts the remaining parts plus a short note that the answer
may be incomplete. That is the one unavoidable window: a crash while the platform call of one part
is in flight (or between its return and the next commit) may lose that part, never duplicates it.
Two windows belong to others: a crash between xAI's 200 and our commit loses the result (xAI
serves it once), and an adapter that raises PlatformError after the platform did accept a post
makes that part post twice on retry.

Modules: `deferred` (Deferrals, the steps above), `claims` (the locked claim and the lost-lease signal,
shared with the digest runs) and `timer` (Jobs, the heartbeats and the /readyz check).
"""

from __future__ import annotations

from bot.jobs.claims import LeaseLost, claimable
from bot.jobs.deferred import (
    EMPTY_ANSWER,
    EXPIRY,
    GONE_NOTICE,
    GONE_TAIL,
    INTERRUPTED_NOTE,
    MAX_DELIVERY_FAILURES,
    OPEN,
    Deferrals,
    _Work,
)
from bot.jobs.timer import DigestTicker, Jobs, beat, heartbeat_check, heartbeats

__all__ = [
    "EMPTY_ANSWER",
    "EXPIRY",
    "GONE_NOTICE",
    "GONE_TAIL",
    "INTERRUPTED_NOTE",
    "MAX_DELIVERY_FAILURES",
    "OPEN",
    "Deferrals",
    "DigestTicker",
    "Jobs",
    "LeaseLost",
    "_Work",  # the claimed row's values: tests type their crash-injecting step hook with it
    "beat",
    "claimable",
    "heartbeat_check",
    "heartbeats",
]
