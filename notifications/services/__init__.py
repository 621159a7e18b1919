"""Every write of notifications: keyword-only, transactional and audited where it matters.

Split by sub-domain; everything is importable from `notifications.services` directly.
"""

from notifications.services.events import (
    MAX_BATCH,
    EventResult,
    IngestReport,
    event_ingest,
    outcomes_record,
)
from notifications.services.idempotency import (
    IdempotencyKeyReusedError,
    api_records_purge,
    idempotency_claim,
    idempotency_complete,
)
from notifications.services.rate_limits import api_key_rate_limit_set
from notifications.services.signing import (
    SignatureError,
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
    "SignatureError",
    "api_key_rate_limit_set",
    "api_records_purge",
    "api_signing_disable",
    "api_signing_enable",
    "api_signing_rotate",
    "event_ingest",
    "idempotency_claim",
    "idempotency_complete",
    "outcomes_record",
    "signature_for",
    "signed_request_verify",
]
