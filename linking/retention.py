"""Linking's part of the daily retention purge (see `portal.retention`)."""

from linking.models import Contact


def contacts_purge(bank, cutoff) -> int:
    """Forget when people last wrote to the Page, past the bank's retention.

    A contact only measures the 24-hour and 7-day messaging windows; one older than any
    retention period opens no window, so deleting it changes nothing that is sent.
    """
    return Contact.objects.filter(bank=bank, last_inbound_at__lt=cutoff).delete()[0]
