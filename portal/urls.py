from django.urls import include, path

from portal import views
from portal.api.views import WhoamiApi
from portal.views import (
    api_keys,
    auth,
    banks,
    integration,
    integrity,
    notifications,
    passkeys,
    pause,
    retention,
    staff,
    templates,
)

app_name = "portal"

bank_urls = [
    path("", banks.dashboard, name="dashboard"),
    path("settings/", banks.bank_settings, name="bank_settings"),
    path("settings/retention/", retention.retention, name="retention"),
    path("pause/", pause.bank_pause, name="bank_pause"),
    path("audit/", banks.audit_log, name="audit_log"),
    path("audit/<int:entry>/", banks.audit_entry, name="audit_entry"),
    path("audit/export.csv", banks.audit_export, {"fmt": "csv"}, name="audit_export_csv"),
    path("audit/export.jsonl", banks.audit_export, {"fmt": "jsonl"}, name="audit_export_jsonl"),
    path("audit/integrity/", integrity.audit_integrity, name="audit_integrity"),
    path(
        "audit/checkpoints/sign/",
        integrity.audit_checkpoint_sign,
        name="audit_checkpoint_sign",
    ),
    path(
        "audit/checkpoints/<int:checkpoint>.json",
        integrity.audit_checkpoint_export,
        name="audit_checkpoint_export",
    ),
    path("integration/", integration.integration, name="integration"),
    path(
        "integration/credentials/",
        integration.integration_credentials,
        name="integration_credentials",
    ),
    path("integration/check/", integration.integration_check, name="integration_check"),
    path("integration/go-live/", integration.integration_go_live, name="integration_go_live"),
    path("integration/pause/", integration.integration_pause, name="integration_pause"),
    path("integration/resume/", integration.integration_resume, name="integration_resume"),
    path(
        "integration/signing-secret/rotate/",
        integration.signing_secret_rotate,
        name="signing_secret_rotate",
    ),
    path("api-keys/", api_keys.api_keys, name="api_keys"),
    path("api-keys/<int:key>/revoke/", api_keys.api_key_revoke, name="api_key_revoke"),
    path("api-keys/<int:key>/roll/", api_keys.api_key_roll, name="api_key_roll"),
    path("notifications/", notifications.notification_policies, name="notification_policies"),
    path(
        "notifications/<int:policy>/",
        notifications.notification_policy_edit,
        name="notification_policy_edit",
    ),
    path(
        "notifications/hand-back/",
        notifications.hand_back_edit,
        name="hand_back_edit",
    ),
    path(
        "notifications/versions/<int:policy_version>/",
        notifications.notification_policy_version,
        name="notification_policy_version",
    ),
    path(
        "notifications/versions/<int:policy_version>/approve/",
        notifications.notification_policy_version_approve,
        name="notification_policy_version_approve",
    ),
    path(
        "notifications/versions/<int:policy_version>/reject/",
        notifications.notification_policy_version_reject,
        name="notification_policy_version_reject",
    ),
    path(
        "notifications/versions/<int:policy_version>/rollback/",
        notifications.notification_policy_version_rollback,
        name="notification_policy_version_rollback",
    ),
    path(
        "notifications/consent/",
        notifications.notification_settings_edit,
        name="notification_settings_edit",
    ),
    path("templates/", templates.message_templates, name="message_templates"),
    path("templates/new/", templates.message_template_new, name="message_template_new"),
    path("templates/preview/", templates.message_template_preview, name="message_template_preview"),
    path(
        "templates/versions/<int:version>/",
        templates.message_template_version,
        name="message_template_version",
    ),
    path(
        "templates/versions/<int:version>/approve/",
        templates.message_template_version_approve,
        name="message_template_version_approve",
    ),
    path(
        "templates/versions/<int:version>/reject/",
        templates.message_template_version_reject,
        name="message_template_version_reject",
    ),
    path(
        "templates/versions/<int:version>/rollback/",
        templates.message_template_version_rollback,
        name="message_template_version_rollback",
    ),
    path(
        "templates/<int:template>/", templates.message_template_edit, name="message_template_edit"
    ),
    path(
        "templates/<int:template>/delete/",
        templates.message_template_delete,
        name="message_template_delete",
    ),
    path(
        "templates/<int:template>/utility/register/",
        templates.utility_template_register,
        name="utility_template_register",
    ),
    path(
        "templates/<int:template>/utility/refresh/",
        templates.utility_template_refresh,
        name="utility_template_refresh",
    ),
    path("staff/", staff.staff_list, name="staff_list"),
    path("staff/invite/", staff.staff_invite, name="staff_invite"),
    path("staff/<int:membership>/remove/", staff.membership_remove, name="membership_remove"),
    path(
        "invitations/<int:invitation>/revoke/",
        staff.invitation_revoke,
        name="invitation_revoke",
    ),
]

staff_urls = [
    path("", banks.staff_home, name="staff_home"),
    path("login/", auth.login, name="login"),
    path("login/verify/", auth.login_verify, name="login_verify"),
    path("login/two-factor/", auth.two_factor_setup, name="two_factor_setup"),
    path("login/recovery/", auth.login_recovery, name="login_recovery"),
    path("account/recovery-codes/", auth.recovery_codes, name="recovery_codes"),
    path("logout/", auth.logout, name="logout"),
    path("account/", auth.account, name="account"),
    path("account/passkeys/<int:passkey>/name/", passkeys.passkey_name, name="passkey_name"),
    path(
        "account/passkeys/<int:passkey>/remove/",
        passkeys.passkey_remove,
        name="passkey_remove",
    ),
    # django-otp-webauthn's endpoints, served by the portal's narrower views.
    path(
        "account/passkeys/register/begin/",
        passkeys.passkey_register_begin,
        name="passkey_register_begin",
    ),
    path(
        "account/passkeys/register/complete/",
        passkeys.passkey_register_complete,
        name="passkey_register_complete",
    ),
    path("login/passkey/begin/", passkeys.passkey_sign_in_begin, name="passkey_sign_in_begin"),
    path(
        "login/passkey/complete/",
        passkeys.passkey_sign_in_complete,
        name="passkey_sign_in_complete",
    ),
    path("passkeys/words.js", passkeys.passkey_script_words, name="passkey_script_words"),
    path("invitations/<str:token>/", auth.invitation_accept, name="invitation_accept"),
    path("platform/banks/new/", banks.bank_create, name="bank_create"),
    path(
        "platform/audit/integrity/",
        integrity.platform_audit_integrity,
        name="platform_audit_integrity",
    ),
    path(
        "platform/audit/checkpoints/<int:checkpoint>.json",
        integrity.platform_audit_checkpoint_export,
        name="platform_audit_checkpoint_export",
    ),
    path("platform/banks/pause/", pause.banks_pause_bulk, name="banks_pause"),
    path("banks/", banks.bank_list, name="bank_list"),
    path("banks/<slug:bank>/", include(bank_urls)),
]

urlpatterns = [
    path("", views.home, name="home"),
    path("staff/", include(staff_urls)),
    path("api/v1/whoami", WhoamiApi.as_view(), name="api_whoami"),
]
