"""Delivery: a worker claims due notifications in batches and pushes them to the Send API.

One `deliveries_run` call (the `deliver_due` task) runs a pipeline until nothing is due
or its time is up:

- **Claim** up to `NOTIFICATIONS_CLAIM_BATCH` due notifications of live integrations
  (`FOR UPDATE SKIP LOCKED`, so workers never wait on each other), each under a lease,
  and claim again whenever less than half a batch is left. Only the head of each
  person's queue is claimable (`services.queue`); a partial unique index refuses a
  second in-flight notification per person.
- **Prepare** in a few set-based reads: re-check the consent (an ended one cancels),
  choose the form the platform allows now (free-form UPDATE within 24 hours of the
  person's last message, else the bank's approved utility template, else held), build
  the Send API body.
- **Send** from a thread pool over the pooled httpx client. A call goes to a free thread
  right after its token is taken from the Page's bucket, shared by all workers
  (`notifications.page_limits`). Messages are marked `send_started_at`, a group at a
  time, before they go out.
- **Record** results every quarter second, in one transaction: the notification's new
  state, one `DeliveryAttempt` per call, one audit entry per message that reached the
  platform, and sent/failed/dead entries in the bank's outcome feed.

Errors by class: transient and throttled ones retry with exponential backoff and jitter
(`next_attempt_at`; a throttle also slows the Page's bucket); outside-window switches to
the utility template or holds; person unavailable fails and marks the person
unreachable; a bad token or restricted Page pauses the bank's integration; refused
requests are dead-lettered at once; and an answer that may hide a sent message (a
connection lost in flight, an unreadable success) is dead-lettered as uncertain for staff
to check, never resent blindly.

Where each part lives: `claim` (leases, `SKIP LOCKED`), `prepare` (consents, forms),
`send` (the thread pool, Page tokens), `record` (answers to results, results to rows),
`takeover` (expired leases, the sweeper); `pipeline` runs them, `jobs` is what they pass.
"""

from notifications.services.delivery.claim import Claim, claim_due, lease_owner_new
from notifications.services.delivery.jobs import ENGINE, Job, Result, RunReport
from notifications.services.delivery.pipeline import deliveries_run
from notifications.services.delivery.record import ATTEMPT_FIELDS, results_record, retry_delay
from notifications.services.delivery.takeover import SweepReport, leases_take_over, outbox_sweep

__all__ = [
    "ATTEMPT_FIELDS",
    "ENGINE",
    "Claim",
    "Job",
    "Result",
    "RunReport",
    "SweepReport",
    "claim_due",
    "deliveries_run",
    "lease_owner_new",
    "leases_take_over",
    "outbox_sweep",
    "results_record",
    "retry_delay",
]
