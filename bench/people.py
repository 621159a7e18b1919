"""Linked customers for the benchmarks and the chaos run, inserted in bulk.

Each customer gets one Visa card, an authorised consent bound to a PSID on the bank's
Page, and a recent inbound message (the 24-hour window is open). Run inside Django.
"""

import datetime as dt


def linked_customers_create(bank, page_id: str, count: int, *, scopes, psid, purpose: str):
    """`count` linked customers of `bank` on `page_id`; `psid(n)` is the n-th one's PSID.

    Returns the customers' consents, in order.
    """
    from django.utils import timezone

    from linking.models import Account, Consent, Contact, Customer

    now = timezone.now()
    customers = Customer.objects.bulk_create(
        [
            Customer(bank=bank, external_id=f"cu-{n}", name=f"Customer {n}", locale="en")
            for n in range(count)
        ]
    )
    cards = Account.objects.bulk_create(
        [
            Account(
                bank=bank,
                customer=customer,
                external_id="visa",
                kind="credit_card",
                name="Visa",
                last4="9012",
                currency="EUR",
                balance="0",
            )
            for customer in customers
        ]
    )
    consents = Consent.objects.bulk_create(
        [
            Consent(
                bank=bank,
                customer=customer,
                scopes=list(scopes),
                status=Consent.Status.AUTHORISED,
                purpose=purpose,
                duration_days=90,
                granted_at=now,
                expires_at=now + dt.timedelta(days=90),
                page_id=page_id,
                psid=psid(n),
                linked_at=now,
            )
            for n, customer in enumerate(customers)
        ]
    )
    Consent.accounts.through.objects.bulk_create(
        [
            Consent.accounts.through(consent_id=consent.pk, account_id=card.pk)
            for consent, card in zip(consents, cards, strict=True)
        ]
    )
    Contact.objects.bulk_create(
        [Contact(bank=bank, page_id=c.page_id, psid=c.psid, last_inbound_at=now) for c in consents]
    )
    return consents
