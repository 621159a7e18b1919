"""A consent that reaches its end date stops every send, as beat's expiry task runs it."""

import datetime as dt

import pytest
from django.utils import timezone

from linking.models import Consent
from linking.tasks import expire_consents
from notifications.models import Notification
from notifications.tests.factories import event_payload
from notifications.tests.test_delivery import deliver, one, post

pytestmark = pytest.mark.django_db


def test_an_expired_consent_sends_nothing_more(linked, linked_api, graph):
    post(linked_api, event_payload("fraud.alert", account=linked.card))
    Consent.objects.filter(pk=linked.consent.pk).update(
        expires_at=timezone.now() - dt.timedelta(minutes=1)
    )

    assert expire_consents() == 1  # the beat task itself
    deliver()
    post(linked_api, event_payload("transaction.posted", account=linked.card))

    assert graph.sent == []
    assert (one().state, one().reason) == (
        Notification.State.CANCELLED,
        Notification.Reason.LINK_ENDED,
    )
