from django.dispatch import receiver

from linking import signals, tasks


@receiver(signals.link_bound)
def confirm_link(sender, consent_id: int, **kwargs) -> None:
    tasks.send_link_confirmation.delay(consent_id)
    tasks.send_new_link_notices.delay(consent_id)


@receiver(signals.link_ended)
def tell_messenger(sender, consent_id: int, **kwargs) -> None:
    tasks.unlink_in_messenger.delay(consent_id)


@receiver(signals.consent_expiring)
def remind(sender, consent_id: int, **kwargs) -> None:
    tasks.send_expiry_reminder.delay(consent_id)


@receiver(signals.referral_refused)
def tell_referral_refused(
    sender: object, bank_id: int, psid: str, reason: str, **kwargs: object
) -> None:
    tasks.send_referral_refusal.delay(bank_id, psid, reason)
