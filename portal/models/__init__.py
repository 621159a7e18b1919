"""The portal's data, split by sub-domain; every model is importable from `portal.models`."""

from portal.models.api_keys import ApiKey
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
    "ApiKey",
    "AuditChain",
    "AuditCheckpoint",
    "AuditEvent",
    "AuditIntegrityCheck",
    "Bank",
    "DeliveryRulesStamp",
    "MessageTemplate",
    "MessengerIntegration",
    "NotificationPolicy",
    "NotificationSettings",
    "RetentionPolicy",
    "StaffInvitation",
    "StaffMembership",
    "StaffTOTPDevice",
    "UtilityTemplate",
    "WorkerHeartbeat",
    "locale_validator",
    "validate_timezone",
]
