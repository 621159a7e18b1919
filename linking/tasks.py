"""Calls to Messenger about links, made by workers after the database has the truth."""

from celery import shared_task

from linking import services
from linking.models import LinkMessage


@shared_task(name="linking.send_link_confirmation", ignore_result=True)
def send_link_confirmation(consent_id: int) -> None:
    """The nudge after a link was bound: confirm it now. A failure is recorded on the
    link's `LinkMessage` row and retried by the sweeper; a lost nudge is made up for by it."""
    services.link_messages_send(
        actor=services.MESSAGE_SENDER, consent_id=consent_id, kind=LinkMessage.Kind.CONFIRMATION
    )


@shared_task(name="linking.send_new_link_notices", ignore_result=True)  # type: ignore[untyped-decorator]
def send_new_link_notices(consent_id: int) -> None:
    """The nudge after a link was bound: tell the customer's other linked chats now."""
    services.link_messages_send(
        actor=services.MESSAGE_SENDER,
        consent_id=consent_id,
        kind=LinkMessage.Kind.NEW_LINK_NOTICE,
        about=True,
    )


@shared_task(name="linking.send_link_message", ignore_result=True)  # type: ignore[untyped-decorator]
def send_link_message(message_id: int) -> None:
    """The nudge for one owed message (the answer to "That wasn't me")."""
    services.link_message_attempt(actor=services.MESSAGE_SENDER, message_id=message_id)


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


# Celery has no types; the baseline of mypy's errors only shrinks, so a new task says so.
@shared_task(name="linking.sweep_link_messages", ignore_result=True)  # type: ignore[untyped-decorator]
def sweep_link_messages() -> int:
    """Beat: send every link confirmation and expiry reminder whose nudge was lost or whose
    call failed."""
    return services.link_messages_sweep(actor=services.MESSAGE_SENDER)


@shared_task(name="linking.expire_consents", ignore_result=True)
def expire_consents() -> int:
    return services.consents_expire_due()


@shared_task(name="linking.remind_expiring_consents", ignore_result=True)
def remind_expiring_consents() -> int:
    return services.consents_remind_expiring()


@shared_task(name="linking.send_expiry_reminder", ignore_result=True)
def send_expiry_reminder(consent_id: int) -> None:
    """The nudge after the expiry scan owed the customer a reminder: send it now."""
    services.link_messages_send(
        actor=services.MESSAGE_SENDER,
        consent_id=consent_id,
        kind=LinkMessage.Kind.EXPIRY_REMINDER,
    )


@shared_task(name="linking.send_referral_refusal", ignore_result=True)  # type: ignore[untyped-decorator]
def send_referral_refusal(bank_id: int, psid: str, reason: str) -> None:
    """The nudge after an m.me ref was refused: tell the person who brought it, once."""
    services.referral_refusal_send(bank_id=bank_id, psid=psid, reason=reason)


@shared_task(name="linking.expire_unused_invitations", ignore_result=True)  # type: ignore[untyped-decorator]
def expire_unused_invitations() -> int:
    """Beat: end the consents of m.me invitations whose link was never opened in time."""
    return services.link_invitations_expire_unused()
