"""Rows as an older release stored them, for the migration tests (`core.tests.migrations`)."""

from types import SimpleNamespace


def linked_customer(apps, *, page_id="1122334455", psid="71"):
    """A bank, its customer Ana with a credit card, and her authorised link on `page_id`,
    made through the historical models `apps` gives."""
    bank = apps.get_model("portal", "Bank").objects.create(name="Harbour", slug="harbour")
    customer = apps.get_model("linking", "Customer").objects.create(
        bank=bank, external_id="cu-1", name="Ana"
    )
    account = apps.get_model("linking", "Account").objects.create(
        bank=bank,
        customer=customer,
        external_id="visa-1",
        kind="credit_card",
        name="Visa",
        last4="9012",
        currency="EUR",
        balance=0,
    )
    consent = apps.get_model("linking", "Consent").objects.create(
        bank=bank,
        customer=customer,
        status="authorised",
        purpose="updates",
        duration_days=90,
        page_id=page_id,
        psid=psid,
    )
    return SimpleNamespace(bank=bank, customer=customer, account=account, consent=consent)
