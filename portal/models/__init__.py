"""The portal's data, split by sub-domain; every model is importable from `portal.models`."""

from portal.models.api_keys import (
    ApiKey,
    ApiKeyRateLimit,
    ApiSigning,
    IdempotencyRecord,
    SignedRequestId,
)
from portal.models.audit import AuditChain, AuditCheckpoint, AuditEvent, AuditIntegrityCheck
from portal.models.banks import (
    Bank,
    StaffInvitation,
    StaffMembership,
    StaffTOTPDevice,
    WorkerHeartbeat,
    locale_validator,
    validate_timezone,
)
from portal.models.integration import (
    PAGE_TAKEN,
    SEND_RATE_LIMIT_ERROR,
    SEND_RATE_LIMIT_MAX,
    DeliveryRulesStamp,
    MessageTemplate,
    MessengerIntegration,
    NotificationPolicy,
    NotificationSettings,
    RetentionPolicy,
    UtilityTemplate,
)

__all__ = [
    "PAGE_TAKEN",
    "SEND_RATE_LIMIT_ERROR",
    "SEND_RATE_LIMIT_MAX",
    "ApiKey",
    "ApiKeyRateLimit",
    "ApiSigning",
    "AuditChain",
    "AuditCheckpoint",
    "AuditEvent",
    "AuditIntegrityCheck",
    "Bank",
    "DeliveryRulesStamp",
    "IdempotencyRecord",
    "MessageTemplate",
    "MessengerIntegration",
    "NotificationPolicy",
    "NotificationSettings",
    "RetentionPolicy",
    "SignedRequestId",
    "StaffInvitation",
    "StaffMembership",
    "StaffTOTPDevice",
    "UtilityTemplate",
    "WorkerHeartbeat",
    "locale_validator",
    "validate_timezone",
]
