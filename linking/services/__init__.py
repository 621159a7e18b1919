"""Every write of linking: keyword-only, transactional and audited.

Split by sub-domain: `customers` (the core's customers and accounts, the directory sign-in,
the identity provider, contacts), `consents` (the consent lifecycle and the Messenger
link), `unlinks` (telling Messenger a link ended, durably), `link_messages` (the link
confirmation and the expiry reminder, durably), `subject_requests` (audited
reads and erasure). Everything is importable from `linking.services` directly.
"""

from linking.services.consents import (
    ALLOWED_TRANSITIONS,
    CONSENT_ACTOR,
    MAX_DURATION_DAYS,
    PLATFORM,
    REMIND_BEFORE,
    GrantedConsent,
    LinkingTokenUsedError,
    LinkRefusedError,
    consent_authorise,
    consent_reject,
    consent_renew,
    consent_revoke,
    consents_expire_due,
    consents_remind_expiring,
    customer_actor,
    customer_data_view_record,
    customer_links_revoke,
    link_bind,
    link_unlinked_by_platform,
)
from linking.services.customers import (
    AccountInput,
    contact_touch,
    customer_upsert,
    directory_authenticate,
    identity_provider_configure,
)
from linking.services.link_messages import (
    MESSAGE_SENDER,
    link_message_attempt,
    link_message_schedule,
    link_messages_due,
    link_messages_send,
    link_messages_sweep,
)
from linking.services.subject_requests import (
    ERASED_NAME,
    Erasure,
    ErasureBlockedError,
    linking_erase,
    subject_erase,
    subject_export_record,
    subject_page_view_record,
)
from linking.services.unlinks import (
    UNLINKER,
    page_credentials,
    platform_unlink_attempt,
    platform_unlink_schedule,
    platform_unlinks_due,
    platform_unlinks_sweep,
)

__all__ = [
    "ALLOWED_TRANSITIONS",
    "CONSENT_ACTOR",
    "ERASED_NAME",
    "MAX_DURATION_DAYS",
    "MESSAGE_SENDER",
    "PLATFORM",
    "REMIND_BEFORE",
    "UNLINKER",
    "AccountInput",
    "Erasure",
    "ErasureBlockedError",
    "GrantedConsent",
    "LinkRefusedError",
    "LinkingTokenUsedError",
    "consent_authorise",
    "consent_reject",
    "consent_renew",
    "consent_revoke",
    "consents_expire_due",
    "consents_remind_expiring",
    "contact_touch",
    "customer_actor",
    "customer_data_view_record",
    "customer_links_revoke",
    "customer_upsert",
    "directory_authenticate",
    "identity_provider_configure",
    "link_bind",
    "link_message_attempt",
    "link_message_schedule",
    "link_messages_due",
    "link_messages_send",
    "link_messages_sweep",
    "link_unlinked_by_platform",
    "linking_erase",
    "page_credentials",
    "platform_unlink_attempt",
    "platform_unlink_schedule",
    "platform_unlinks_due",
    "platform_unlinks_sweep",
    "subject_erase",
    "subject_export_record",
    "subject_page_view_record",
]
