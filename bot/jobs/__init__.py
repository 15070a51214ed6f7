"""Deferred completions (submit, poll, store, deliver once), and when this process claims work: an
alarm per claimer (deferred requests, digest slots) that sleeps until the next row or slot is due or
it is rung (a submit, a schedule changed, another instance's NOTIFY), and a heartbeat per interval.

State machine of a deferred_request row (bot.jobs.state.Status); every arrow is one conditional
UPDATE of DeferredRequests on (id, status, lease_owner) that renews or drops the lease, so a step
whose lease was taken over matches no row (storing the 200 alone matches on (id, status): the result
exists nowhere else, so it is kept whoever holds the lease, unless the row moved on):

    pending --202/error--> pending (next_poll_at backs off 2 s -> 30 s, lease dropped)
    pending --200--> fetched  (the completion is stored BEFORE anything is posted: xAI serves it once)
    pending --404 or past expires_at--> gone
    fetched --the parts to post fixed--> delivering
    gone    --reservation released (idempotent)--> delivering (one part: the "expired" notice)
    delivering --each part: mark "attempting i", post, record its id; then the turn recorded and
               the quota settled (both idempotent)--> delivered (an answer) | expired (a notice)
    delivering --failed post--> delivering (lease dropped; retried after the platform's retry-after,
               or 30 s x failures)
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

Modules: `deferred` (Deferrals, the steps above), `repository` (DeferredRequests: every SQL
statement of the deferred requests, values in and out), `state` (Status, the claimed Work and the
result_json Envelope, parsed and written there only), `claims` (the locked claim and the lost-lease
signal, shared with the digest runs), `wakeups` (Alarm, Bell), `notices` (NOTIFY and the one LISTEN
connection per process, PostgreSQL) and `timer` (Jobs: the alarms, the heartbeats and the /readyz
check).
"""

from __future__ import annotations

from bot.jobs.claims import LeaseLost, claimable
from bot.jobs.deferred import Deferrals
from bot.jobs.notices import DIGESTS, Notices, announce
from bot.jobs.repository import DeferredRequests
from bot.jobs.shares import RateLease
from bot.jobs.timer import HEARTBEAT_WINDOW, DigestTicker, Jobs, Pace, heartbeat_check, heartbeats
from bot.jobs.wakeups import Bell

__all__ = [
    "DIGESTS",
    "HEARTBEAT_WINDOW",
    "Bell",
    "Deferrals",
    "DeferredRequests",
    "DigestTicker",
    "Jobs",
    "LeaseLost",
    "Notices",
    "Pace",
    "RateLease",
    "announce",
    "claimable",
    "heartbeat_check",
    "heartbeats",
]
