"""Banks and linked customers for the benchmarks and the chaos run, inserted in bulk.

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


def bank_on_page(slug: str, page_id: str, customers: int, *, scopes, psid, purpose: str):
    """A bank with the default policies and templates, live on `page_id`, with `customers`
    linked customers (`linked_customers_create`)."""
    from linking.tests.factories import IntegrationFactory
    from portal.tests.factories import BankFactory

    bank = BankFactory(slug=slug, notification_defaults=True)
    IntegrationFactory(bank=bank, page_id=page_id)
    linked_customers_create(bank, page_id, customers, scopes=scopes, psid=psid, purpose=purpose)
    return bank


def unlimited_api_key(bank, *, name: str, actor: str) -> str:
    """A new API key of `bank` whose rate limit a benchmark never reaches; its secret."""
    from portal.audit import Actor
    from portal.services.api_settings import api_key_rate_limit_set
    from portal.tests.factories import api_key_for

    issued = api_key_for(bank, name=name)
    api_key_rate_limit_set(
        actor=Actor.system(actor), api_key=issued.api_key, per_second=1e6, burst=10**6
    )
    return issued.secret
