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
from notifications.services.hand_back import hand_back_waiting, hand_backs_run
from notifications.services.lifecycle import (
    ReplayReport,
    dead_letters_replay,
    notifications_cancel_for_link,
    notifications_cancel_out_of_scope,
    notifications_mark_delivered,
    notifications_mark_read,
    notifications_replay,
    recipient_acted,
)
from notifications.services.nudge import deliveries_nudge, deliveries_nudge_taken
from notifications.services.outbox import outbox_plan
from notifications.services.partitions import partitions_create_ahead, partitions_drop_expired

__all__ = [
    "MAX_BATCH",
    "EventResult",
    "IngestReport",
    "Post",
    "ReplayReport",
    "RunReport",
    "SweepReport",
    "dead_letters_replay",
    "deliveries_nudge",
    "deliveries_nudge_taken",
    "deliveries_run",
    "event_ingest",
    "events_ingest_posts",
    "hand_back_waiting",
    "hand_backs_run",
    "leases_take_over",
    "notifications_cancel_for_link",
    "notifications_cancel_out_of_scope",
    "notifications_mark_delivered",
    "notifications_mark_read",
    "notifications_replay",
    "outbox_plan",
    "outbox_sweep",
    "outcomes_record",
    "partitions_create_ahead",
    "partitions_drop_expired",
    "recipient_acted",
]
