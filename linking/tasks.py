"""Calls to Messenger about links, made by workers after the database has the truth."""

import logging

from celery import shared_task

import messenger
from linking import messages, services
from linking.models import Consent

log = logging.getLogger(__name__)


def _say(consent: Consent, text: str) -> None:
    creds = services.page_credentials(consent.bank_id)
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


@shared_task(name="linking.unlink_in_messenger", ignore_result=True)
def unlink_in_messenger(consent_id: int) -> None:
    """The nudge after a link ended on the bank's side: tell Messenger now, saying goodbye
    first. A failure is recorded on the link's `PlatformUnlink` row and retried by the
    sweeper; a lost nudge is made up for by it too."""
    services.platform_unlink_attempt(actor=services.UNLINKER, consent_id=consent_id)


@shared_task(name="linking.sweep_platform_unlinks", ignore_result=True)
def sweep_platform_unlinks() -> int:
    """Beat: tell Messenger of every ended link whose nudge was lost or whose call failed."""
    return services.platform_unlinks_sweep(actor=services.UNLINKER)


@shared_task(name="linking.expire_consents", ignore_result=True)
def expire_consents() -> int:
    return services.consents_expire_due()


@shared_task(name="linking.remind_expiring_consents", ignore_result=True)
def remind_expiring_consents() -> int:
    return services.consents_remind_expiring()


@shared_task(name="linking.send_expiry_reminder", **LINK_MESSAGE_TASK)
def send_expiry_reminder(consent_id: int) -> None:
    _say_to_linked(consent_id, messages.expiry_reminder)
