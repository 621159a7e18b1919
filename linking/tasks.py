"""Calls to Messenger about links, made by workers after the database has the truth."""

import contextlib
import logging

from celery import shared_task
from django.db import transaction

import messenger
from linking import messages, services
from linking.models import Consent
from portal.models import MessengerIntegration

log = logging.getLogger(__name__)


def _credentials(consent: Consent) -> messenger.PageCredentials | None:
    integration = MessengerIntegration.objects.filter(bank_id=consent.bank_id).first()
    if integration is None or integration.status == MessengerIntegration.Status.PAUSED:
        return None
    return messenger.PageCredentials(
        page_id=integration.page_id,
        access_token=integration.page_access_token,
        app_secret=integration.app_secret,
    )


def _say(consent: Consent, text: str) -> None:
    creds = _credentials(consent)
    if creds is None or not consent.psid:
        return
    try:
        messenger.get_client().send(creds, messenger.builders.text_message(consent.psid, text))
    except (messenger.OutsideWindowError, messenger.PersonUnavailableError) as exc:
        log.info("link message to consent %s not sent: %s", consent.pk, type(exc).__name__)


# A message to a linked person: retried with backoff while Messenger is unavailable.
LINK_MESSAGE_TASK = {
    "ignore_result": True,
    "autoretry_for": (messenger.TransientError, messenger.ThrottledError),
    "retry_backoff": True,
    "retry_backoff_max": 600,
    "retry_jitter": True,
    "max_retries": 8,
}


def _say_to_linked(consent_id: int, compose) -> None:
    consent = Consent.objects.select_related("bank").filter(pk=consent_id).first()
    if consent is not None and consent.is_linked:
        _say(consent, compose(consent))


@shared_task(name="linking.send_link_confirmation", **LINK_MESSAGE_TASK)
def send_link_confirmation(consent_id: int) -> None:
    _say_to_linked(consent_id, messages.link_confirmation)


@shared_task(
    name="linking.unlink_in_messenger",
    ignore_result=True,
    autoretry_for=(messenger.TransientError, messenger.ThrottledError),
    retry_backoff=True,
    retry_backoff_max=3600,
    retry_jitter=True,
    max_retries=20,
)
def unlink_in_messenger(consent_id: int) -> None:
    """Tell Messenger about a link that ended on the bank's side; say goodbye first."""
    consent = Consent.objects.select_related("bank").filter(pk=consent_id).first()
    if consent is None or consent.platform_unlinked_at or not consent.psid:
        return
    if consent.status not in {Consent.Status.REVOKED, Consent.Status.EXPIRED}:
        return
    creds = _credentials(consent)
    if creds is None:
        return
    _say(consent, messages.link_ended(consent))
    with contextlib.suppress(messenger.PersonUnavailableError):  # nothing left to unlink
        messenger.get_client().unlink_account(creds, consent.psid)
    with transaction.atomic():
        services.consent_platform_unlinked(consent=consent)


@shared_task(name="linking.expire_consents", ignore_result=True)
def expire_consents() -> int:
    return services.consents_expire_due()


@shared_task(name="linking.remind_expiring_consents", ignore_result=True)
def remind_expiring_consents() -> int:
    return services.consents_remind_expiring()


@shared_task(name="linking.send_expiry_reminder", **LINK_MESSAGE_TASK)
def send_expiry_reminder(consent_id: int) -> None:
    _say_to_linked(consent_id, messages.expiry_reminder)
