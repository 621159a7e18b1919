from collections.abc import Callable, Collection
from datetime import UTC, datetime, time, timedelta

from django.db import connection
from django.db.models import Q
from django.shortcuts import get_object_or_404

from core.registry import Registry
from linking.models import Account, Consent, Customer, LinkingTokenUse
from linking.receipts import PLATFORM_NAME, consent_receipt, customer_shared_export
from portal.dashboard import PanelContent
from portal.models import AuditEvent, Bank

# When the last update went out under each link: the updates belong to `notifications`,
# which linking must not import, so that app registers a source from its
# `AppConfig.ready`. A source takes consent ids and answers {consent id: when}.
LastUpdateSource = Callable[[list[int]], dict[int, datetime]]
_last_update_sources: Registry[LastUpdateSource] = Registry("last update source")
__all__ = ["PLATFORM_NAME", "consent_receipt", "customer_shared_export"]


def register_last_update_source(key: str, source: LastUpdateSource) -> None:
    _last_update_sources.register(key, source)


def last_update_sent(consent_ids: list[int]) -> dict[int, datetime]:
    """For each consent, when the last update was sent under it (absent: none yet)."""
    latest: dict[int, datetime] = {}
    for source in _last_update_sources:
        for consent_id, at in source(consent_ids).items():
            if consent_id not in latest or at > latest[consent_id]:
                latest[consent_id] = at
    return latest


def linking_token_used(token: str) -> bool:
    """Whether this `account_linking_token` has already completed a Log In."""
    return LinkingTokenUse.objects.filter(token_digest=LinkingTokenUse.digest(token)).exists()


def last_shared_at(customer: Customer) -> dict[str, object]:
    """For each of the customer's consents, when data last left the bank under it."""
    from django.db.models import Max

    rows = (
        AuditEvent.objects.filter(bank=customer.bank, target_type="linking.consent")
        .exclude(data_categories=[])
        .filter(target_id__in=[str(pk) for pk in customer.consents.values_list("pk", flat=True)])
        .values("target_id")
        .annotate(last=Max("occurred_at"))
    )
    return {row["target_id"]: row["last"] for row in rows}


def contact_last_inbound_at(*, bank, page_id: str, psid: str):
    """When the person last acted toward the bank's Page, or None if never."""
    from linking.models import Contact

    return (
        Contact.objects.filter(bank=bank, page_id=page_id, psid=psid)
        .values_list("last_inbound_at", flat=True)
        .first()
    )


def linked_customers_panel(bank) -> PanelContent | None:
    """The staff dashboard's tile: how many customers are linked on Messenger right now."""

    linked = (
        Consent.objects.for_bank(bank)
        .filter(status=Consent.Status.AUTHORISED)
        .exclude(psid="")
        .values("customer")
        .distinct()
        .count()
    )
    if not linked:
        return None  # the slot's own empty state says so, with what to do next
    return PanelContent(value=linked, caption="customers linked on Messenger")


def consent_list_for_console(*, bank, filters: dict | None = None):
    """The bank's consents matching the console's filters, newest first.

    `customer` matches part of a name or the exact customer id, `account` the last 4
    digits or the exact account id; dates are whole UTC days of creation, both included.
    """
    filters = filters or {}
    consents = Consent.objects.for_bank(bank).select_related("customer")
    if customer := filters.get("customer"):
        consents = consents.filter(
            Q(customer__name__icontains=customer) | Q(customer__external_id=customer)
        )
    if psid := filters.get("psid"):
        consents = consents.filter(psid=psid)
    if account := filters.get("account"):
        matching = Account.objects.for_bank(bank).filter(Q(last4=account) | Q(external_id=account))
        consents = consents.filter(accounts__in=matching).distinct()
    if scope := filters.get("scope"):
        if connection.features.supports_json_field_contains:
            consents = consents.filter(scopes__contains=[scope])
        else:  # SQLite (the demo): scopes are a JSON list of known identifiers
            consents = consents.filter(scopes__icontains=f'"{scope}"')
    if status := filters.get("status"):
        consents = consents.filter(status=status)
    if date_from := filters.get("date_from"):
        consents = consents.filter(created_at__gte=_utc_midnight(date_from))
    if date_to := filters.get("date_to"):
        consents = consents.filter(created_at__lt=_utc_midnight(date_to) + timedelta(days=1))
    return consents.order_by("-created_at", "-pk")


def _utc_midnight(day) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def consent_get_for_console(*, bank, pk: int) -> Consent:
    return get_object_or_404(
        Consent.objects.for_bank(bank)
        .select_related("customer")
        .prefetch_related("accounts", "events"),
        pk=pk,
    )


def customer_get_for_console(*, bank, pk: int) -> Customer:
    return get_object_or_404(Customer.objects.for_bank(bank), pk=pk)


def customer_actor_names(bank: Bank, ids: Collection[str]) -> dict[str, str]:
    """The names of the bank's customers among audit actors `ids` (erased ones have none)."""
    numeric = [i for i in ids if str(i).isdigit()]
    customers = Customer.objects.for_bank(bank).filter(pk__in=numeric).exclude(name="")
    return {str(pk): name for pk, name in customers.values_list("pk", "name")}


def customer_actor_search(bank: Bank, text: str) -> list[str]:
    """The audit actor ids of the bank's customers named like `text`, or with that id."""
    customers = Customer.objects.for_bank(bank).filter(
        Q(name__icontains=text) | Q(external_id=text)
    )
    return [str(pk) for pk in customers.order_by("pk").values_list("pk", flat=True)[:200]]
