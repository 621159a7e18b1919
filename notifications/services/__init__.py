"""Every write of notifications: keyword-only, transactional and audited where it matters.

Split by sub-domain; everything is importable from `notifications.services` directly.
"""

from notifications.services.delivery import (
    RunReport,
    SweepReport,
    deliveries_run,
    leases_take_over,
    outbox_sweep,
)
from notifications.services.events import (
    MAX_BATCH,
    EventResult,
    IngestReport,
    Post,
    event_ingest,
    events_ingest_posts,
    outcomes_record,
)
from notifications.services.idempotency import (
    IdempotencyKeyReusedError,
    api_records_purge,
    idempotency_claim,
    idempotency_complete,
)
from notifications.services.lifecycle import (
    ReplayReport,
    dead_letters_replay,
    notifications_cancel_for_link,
    notifications_mark_delivered,
    notifications_mark_read,
    notifications_replay,
    recipient_acted,
)
from notifications.services.nudge import deliveries_nudge, deliveries_nudge_taken
from notifications.services.outbox import outbox_plan
from notifications.services.rate_limits import api_key_rate_limit_set
from notifications.services.signing import (
    SignatureError,
    SignatureHeaderError,
    api_signing_disable,
    api_signing_enable,
    api_signing_rotate,
    signature_for,
    signed_request_verify,
)

__all__ = [
    "MAX_BATCH",
    "EventResult",
    "IdempotencyKeyReusedError",
    "IngestReport",
    "Post",
    "ReplayReport",
    "RunReport",
    "SignatureError",
    "SignatureHeaderError",
    "SweepReport",
    "api_key_rate_limit_set",
    "api_records_purge",
    "api_signing_disable",
    "api_signing_enable",
    "api_signing_rotate",
    "dead_letters_replay",
    "deliveries_nudge",
    "deliveries_nudge_taken",
    "deliveries_run",
    "event_ingest",
    "events_ingest_posts",
    "idempotency_claim",
    "idempotency_complete",
    "leases_take_over",
    "notifications_cancel_for_link",
    "notifications_mark_delivered",
    "notifications_mark_read",
    "notifications_replay",
    "outbox_plan",
    "outbox_sweep",
    "outcomes_record",
    "recipient_acted",
    "signature_for",
    "signed_request_verify",
]
