"""Every write of the portal: keyword-only, transactional and audited.

Split by sub-domain; everything is importable from `portal.services` directly.
"""

from portal.services.api_keys import (
    IssuedApiKey,
    api_key_authenticate,
    api_key_create,
    api_key_revoke,
    api_key_roll,
)
from portal.services.audit import (
    AuditEntry,
    audit_append_last,
    audit_export_record,
    audit_record,
    audit_record_many,
)
from portal.services.banks import OnboardedBank, bank_create, bank_onboard, bank_update
from portal.services.integration import (
    SUBSCRIBED_FIELDS,
    ConnectionCheck,
    IntegrationChange,
    integration_check,
    integration_configure,
    integration_go_live,
    integration_pause,
    integration_resume,
    integration_signing_secret_rotate,
    integration_subscribe,
)
from portal.services.integrity import audit_checkpoint_sign, audit_integrity_check
from portal.services.notifications import (
    hand_back_grace_update,
    message_template_create,
    message_template_delete,
    message_template_update,
    message_templates_ensure_default_locale,
    notification_defaults_create,
    notification_policy_update,
    notification_settings_update,
)
from portal.services.passkeys import (
    LastSecondFactorError,
    passkey_name_clean,
    passkey_register,
    passkey_remove,
    passkey_rename,
)
from portal.services.retention import (
    retention_policy_update,
    retention_purge,
    retention_purge_all,
)
from portal.services.secrets import encryption_keys_rotate
from portal.services.staff import (
    InvitationInvalidError,
    IssuedInvitation,
    invitation_accept,
    invitation_create,
    invitation_revoke,
    recovery_code_sign_in,
    recovery_codes_generate,
    recovery_codes_remaining,
    staff_membership_grant,
    staff_membership_revoke,
    two_factor_device_confirm,
    two_factor_device_start,
)
from portal.services.system import worker_heartbeat_record
from portal.services.utility_templates import (
    UtilityOutcome,
    utility_template_refresh,
    utility_template_register,
    utility_template_status_record,
)

__all__ = [
    "SUBSCRIBED_FIELDS",
    "AuditEntry",
    "ConnectionCheck",
    "IntegrationChange",
    "InvitationInvalidError",
    "IssuedApiKey",
    "IssuedInvitation",
    "LastSecondFactorError",
    "OnboardedBank",
    "UtilityOutcome",
    "api_key_authenticate",
    "api_key_create",
    "api_key_revoke",
    "api_key_roll",
    "audit_append_last",
    "audit_checkpoint_sign",
    "audit_export_record",
    "audit_integrity_check",
    "audit_record",
    "audit_record_many",
    "bank_create",
    "bank_onboard",
    "bank_update",
    "encryption_keys_rotate",
    "hand_back_grace_update",
    "integration_check",
    "integration_configure",
    "integration_go_live",
    "integration_pause",
    "integration_resume",
    "integration_signing_secret_rotate",
    "integration_subscribe",
    "invitation_accept",
    "invitation_create",
    "invitation_revoke",
    "message_template_create",
    "message_template_delete",
    "message_template_update",
    "message_templates_ensure_default_locale",
    "notification_defaults_create",
    "notification_policy_update",
    "notification_settings_update",
    "passkey_name_clean",
    "passkey_register",
    "passkey_remove",
    "passkey_rename",
    "recovery_code_sign_in",
    "recovery_codes_generate",
    "recovery_codes_remaining",
    "retention_policy_update",
    "retention_purge",
    "retention_purge_all",
    "staff_membership_grant",
    "staff_membership_revoke",
    "two_factor_device_confirm",
    "two_factor_device_start",
    "utility_template_refresh",
    "utility_template_register",
    "utility_template_status_record",
    "worker_heartbeat_record",
]
