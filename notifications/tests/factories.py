import copy
import itertools

import factory
from django.utils import timezone

from linking.tests.factories import AccountFactory
from notifications.api.schemas import EXAMPLE_EVENTS
from notifications.models import Event, EventKey

_ids = itertools.count(1)


def event_payload(event_type: str = "transaction.posted", *, account=None, **overrides) -> dict:
    """A valid event as the core would post it, for `account` (its customer and bank)."""
    payload = copy.deepcopy(EXAMPLE_EVENTS[event_type])
    payload["id"] = f"evt-{next(_ids)}"
    if account is not None:
        payload["customer_id"] = account.customer.external_id
        payload["account_id"] = account.external_id
    data = overrides.pop("data", None)
    payload.update(overrides)
    if data is not None:
        payload["data"] = {**payload["data"], **data}
    return payload


class EventFactory(factory.django.DjangoModelFactory):
    """A stored event with its idempotency key, as the ingest stores one."""

    class Meta:
        model = Event
        skip_postgeneration_save = True

    account = factory.SubFactory(AccountFactory)
    customer = factory.SelfAttribute("account.customer")
    bank = factory.SelfAttribute("account.bank")
    event_id = factory.Sequence(lambda n: f"stored-{n}")
    type = Event.Type.BALANCE_UPDATED
    occurred_at = factory.LazyFunction(timezone.now)
    data = factory.LazyFunction(lambda: {"available": "10.00", "currency": "EUR"})

    @factory.post_generation
    def key(obj, create, extracted, **kwargs):
        if create:
            EventKey.objects.create(event=obj, bank_id=obj.bank_id, reference=obj.event_id)


def link_for(customer, accounts, *, scopes, page_id: str, psid: str, **overrides):
    """An authorised consent bound to a Messenger PSID: an active link."""
    from datetime import timedelta

    from linking.models import Consent

    now = timezone.now()
    consent = Consent.objects.create(
        bank=customer.bank,
        customer=customer,
        scopes=sorted(scopes),
        status=Consent.Status.AUTHORISED,
        purpose="Account updates in Messenger",
        duration_days=90,
        granted_at=now,
        expires_at=now + timedelta(days=90),
        page_id=page_id,
        psid=psid,
        linked_at=now,
        **overrides,
    )
    consent.accounts.set(accounts)
    return consent


def contact_for(consent, *, hours_ago: float = 0.0):
    """The person last wrote to the Page `hours_ago`: the 24-hour window is measured from it."""
    from datetime import timedelta

    from linking.models import Contact

    contact, _ = Contact.objects.update_or_create(
        page_id=consent.page_id,
        psid=consent.psid,
        defaults={
            "bank": consent.bank,
            "last_inbound_at": timezone.now() - timedelta(hours=hours_ago),
        },
    )
    return contact


def approved_utility_template(bank, event_type: str, *, locale: str = "en"):
    """Register the bank's template for `event_type` as an approved utility template."""
    from portal.models import MessageTemplate, UtilityTemplate
    from portal.rendering import to_platform

    template = MessageTemplate.objects.get(bank=bank, event_type=event_type, locale=locale)
    platform = to_platform(template.body)
    return UtilityTemplate.objects.create(
        bank=bank,
        message_template=template,
        event_type=event_type,
        locale=locale,
        version=1,
        name=f"{bank.slug.replace('-', '_')}_{event_type.replace('.', '_')}_v1",
        language=locale,
        platform_template_id="990001",
        source_body=template.body,
        platform_body=platform.body,
        param_names=list(platform.param_names),
        status=UtilityTemplate.Status.APPROVED,
    )
