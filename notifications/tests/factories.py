import copy
import itertools

import factory
from django.utils import timezone

from linking.tests.factories import AccountFactory
from notifications.api.schemas import EXAMPLE_EVENTS
from notifications.models import Event

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
    class Meta:
        model = Event

    account = factory.SubFactory(AccountFactory)
    customer = factory.SelfAttribute("account.customer")
    bank = factory.SelfAttribute("account.bank")
    event_id = factory.Sequence(lambda n: f"stored-{n}")
    type = Event.Type.BALANCE_UPDATED
    occurred_at = factory.LazyFunction(timezone.now)
    data = factory.LazyFunction(lambda: {"available": "10.00", "currency": "EUR"})
