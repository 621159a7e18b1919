import csv
import io
import json
from datetime import UTC, datetime

import pytest
from django.http import StreamingHttpResponse
from django.urls import reverse

from linking import services
from linking.models import Consent, ConsentEvent
from linking.tests.factories import AccountFactory, CustomerFactory
from portal.models import AuditEvent, StaffMembership
from portal.tests.factories import BankFactory, StaffMembershipFactory

pytestmark = pytest.mark.django_db

Role = StaffMembership.Role
S = Consent.Status


def at(day: int, hour: int = 12) -> datetime:
    return datetime(2026, 4, day, hour, tzinfo=UTC)


def consent_for(customer, accounts, *, status, scopes, created_at, psid="", page="1029384756"):
    consent = Consent.objects.create(
        bank=customer.bank,
        customer=customer,
        status=status,
        scopes=scopes,
        purpose="Account updates in Messenger",
        duration_days=90,
        created_at=created_at,
        page_id=page if psid else "",
        psid=psid,
    )
    consent.accounts.set(accounts)
    ConsentEvent.objects.create(
        consent=consent,
        from_status="",
        to_status=S.AWAITING_AUTHORISATION,
        actor=ConsentEvent.Actor.CUSTOMER,
        actor_label=customer.name,
        reason="Log In from Messenger",
        occurred_at=created_at,
    )
    if status != S.AWAITING_AUTHORISATION:
        ConsentEvent.objects.create(
            consent=consent,
            from_status=S.AWAITING_AUTHORISATION,
            to_status=status,
            actor=ConsentEvent.Actor.CUSTOMER,
            actor_label=customer.name,
            reason="Allowed on the consent screen",
            occurred_at=created_at,
        )
    return consent


@pytest.fixture
def seeded():
    """Harbour: five consents of three customers over four days; one of another bank."""
    bank = BankFactory(slug="harbour", name="Harbour Bank")
    other = BankFactory(slug="other", name="Other Bank")
    ada = CustomerFactory(bank=bank, external_id="cu-ada", name="Ada Lovelace")
    alan = CustomerFactory(bank=bank, external_id="cu-alan", name="Alan Turing")
    grace = CustomerFactory(bank=bank, external_id="cu-grace", name="Grace Hopper")
    ada_current = AccountFactory(customer=ada, external_id="ada-cur", last4="1111")
    ada_card = AccountFactory(
        customer=ada, external_id="ada-visa", last4="2222", kind="credit_card"
    )
    alan_current = AccountFactory(customer=alan, external_id="alan-cur", last4="3333")
    grace_current = AccountFactory(customer=grace, external_id="grace-cur", last4="1111")
    stranger = CustomerFactory(bank=other, external_id="cu-ada", name="Ada Other")
    c = {
        1: consent_for(ada, [ada_current, ada_card], status=S.AUTHORISED,
                       scopes=["balances", "transactions"], created_at=at(1), psid="5550001"),
        2: consent_for(ada, [ada_card], status=S.AUTHORISED, scopes=["fraud_alerts"],
                       created_at=at(2), psid="5550002"),
        3: consent_for(alan, [alan_current], status=S.REVOKED, scopes=["balances"],
                       created_at=at(2, 20)),
        4: consent_for(grace, [grace_current], status=S.REJECTED, scopes=[], created_at=at(3)),
        5: consent_for(grace, [grace_current], status=S.AUTHORISED,
                       scopes=["transactions", "receipts_shipping"], created_at=at(4),
                       psid="5550005"),
        6: consent_for(stranger, [AccountFactory(customer=stranger, last4="1111")],
                       status=S.AUTHORISED, scopes=["balances"], created_at=at(2),
                       psid="5550001", page="9999999999"),
    }  # fmt: skip
    return bank, other, c


@pytest.fixture
def auditor(seeded, sign_in):
    return sign_in(StaffMembershipFactory(bank=seeded[0], role=Role.AUDITOR).user)


@pytest.fixture
def admin(seeded, sign_in):
    return sign_in(StaffMembershipFactory(bank=seeded[0], role=Role.ADMIN).user)


def listed(response, consents) -> list[int]:
    numbers = {consent.pk: n for n, consent in consents.items()}
    return sorted(numbers[c.pk] for c in response.context["page"].object_list)


def links_url(bank) -> str:
    return reverse("linking:links", kwargs={"bank": bank.slug})


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, [1, 2, 3, 4, 5]),
        ({"customer": "ada"}, [1, 2]),
        ({"customer": "cu-alan"}, [3]),
        ({"customer": "cu-al"}, []),  # ids match exactly; names match in part
        ({"psid": "5550001"}, [1]),
        ({"account": "1111"}, [1, 4, 5]),
        ({"account": "ada-visa"}, [1, 2]),
        ({"scope": "balances"}, [1, 3]),
        ({"scope": "transactions"}, [1, 5]),
        ({"status": "authorised"}, [1, 2, 5]),
        ({"status": "rejected"}, [4]),
        ({"date_from": "2026-04-02", "date_to": "2026-04-02"}, [2, 3]),
        ({"date_from": "2026-04-03"}, [4, 5]),
        ({"customer": "grace", "status": "authorised", "account": "1111"}, [5]),
    ],
)
def test_filters_return_exactly_the_right_consents(seeded, auditor, params, expected):
    bank, _, consents = seeded

    response = auditor.get(links_url(bank), params)

    assert response.status_code == 200
    assert listed(response, consents) == expected


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"psid": "abc"}, "A PSID is digits only."),
        ({"status": "deleted"}, "Select a valid choice."),
        ({"scope": "advertising"}, "Select a valid choice."),
        ({"date_from": "2026-04-05", "date_to": "2026-04-01"}, "must not be before the start"),
    ],
)
def test_an_invalid_filter_is_a_400_with_a_clear_error(seeded, auditor, params, message):
    response = auditor.get(links_url(seeded[0]), params)

    assert response.status_code == 400
    assert message in response.content.decode()


def test_the_console_is_in_the_sidebar_for_auditors(seeded, auditor):
    page = auditor.get(reverse("portal:dashboard", kwargs={"bank": "harbour"})).content.decode()

    assert f'href="{links_url(seeded[0])}"' in page


def test_a_link_page_shows_its_timeline_accounts_and_scopes_and_is_audited(seeded, auditor):
    bank, _, consents = seeded
    consent = consents[1]

    response = auditor.get(
        reverse("linking:link_detail", kwargs={"bank": bank.slug, "consent": consent.pk})
    )

    page = response.content.decode()
    assert "Ada Lovelace" in page
    assert "Allowed on the consent screen" in page
    assert "awaiting_authorisation → authorised" in page
    assert "•••• 1111" in page and "•••• 2222" in page
    assert "Balances, Card and account transactions" in page
    record = AuditEvent.objects.filter(bank=bank).order_by("-seq").first()
    assert record.action == "customer_data.viewed"
    assert (record.target_type, record.target_id) == ("linking.customer", str(consent.customer.pk))
    assert record.details["consent"] == consent.pk


def test_an_auditor_cannot_open_another_banks_link(seeded, auditor):
    bank, _, consents = seeded
    before = AuditEvent.objects.count()

    response = auditor.get(
        reverse("linking:link_detail", kwargs={"bank": bank.slug, "consent": consents[6].pk})
    )

    assert response.status_code == 404
    assert AuditEvent.objects.count() == before


def test_an_admin_revokes_every_active_link_of_a_customer(seeded, admin):
    bank, _, consents = seeded
    ada = consents[1].customer

    response = admin.post(
        reverse("linking:customer_revoke_all", kwargs={"bank": bank.slug, "customer": ada.pk}),
        {"reason": "Customer asked by phone"},
    )

    assert response.status_code == 302
    for n in (1, 2):
        consents[n].refresh_from_db()
        assert consents[n].status == S.REVOKED
        last = consents[n].events.order_by("-occurred_at", "-pk").first()
        assert (last.actor, last.reason) == ("staff", "Customer asked by phone")
    consents[5].refresh_from_db()
    assert consents[5].status == S.AUTHORISED
    assert AuditEvent.objects.filter(bank=bank, action="consent.revoked").count() == 2


def test_revoking_all_needs_a_reason(seeded, admin):
    bank, _, consents = seeded
    ada = consents[1].customer

    admin.post(
        reverse("linking:customer_revoke_all", kwargs={"bank": bank.slug, "customer": ada.pk}),
        {"reason": ""},
    )

    consents[1].refresh_from_db()
    assert consents[1].status == S.AUTHORISED


def test_an_auditor_cannot_revoke(seeded, auditor):
    bank, _, consents = seeded

    response = auditor.post(
        reverse(
            "linking:customer_revoke_all",
            kwargs={"bank": bank.slug, "customer": consents[1].customer.pk},
        ),
        {"reason": "x"},
    )

    assert response.status_code == 403
    consents[1].refresh_from_db()
    assert consents[1].status == S.AUTHORISED


def export(client, bank, fmt, **params) -> tuple[StreamingHttpResponse, str]:
    response = client.get(
        reverse(f"linking:links_export_{fmt}", kwargs={"bank": bank.slug}), params
    )
    assert isinstance(response, StreamingHttpResponse)
    return response, b"".join(response.streaming_content).decode()


def test_a_csv_export_streams_the_filtered_consents(seeded, auditor):
    bank, _, consents = seeded

    response, body = export(auditor, bank, "csv", status="authorised")

    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(body)))
    assert [int(r["consent_id"]) for r in rows] == [consents[n].pk for n in (5, 2, 1)]
    assert rows[2]["customer_id"] == "cu-ada"
    assert rows[2]["psid"] == "5550001"
    assert json.loads(rows[2]["scopes"]) == ["balances", "transactions"]
    assert {a["last4"] for a in json.loads(rows[2]["accounts"])} == {"1111", "2222"}


def test_a_jsonl_export_streams_every_consent_of_the_bank_only(seeded, auditor):
    bank, _, consents = seeded

    _, body = export(auditor, bank, "jsonl")

    documents = [json.loads(line) for line in body.splitlines()]
    assert sorted(d["consent_id"] for d in documents) == sorted(
        consents[n].pk for n in (1, 2, 3, 4, 5)
    )
    assert "Ada Other" not in body


def test_a_links_export_is_audited(seeded, auditor):
    bank = seeded[0]

    export(auditor, bank, "csv", customer="ada")

    record = AuditEvent.objects.filter(bank=bank).order_by("-seq").first()
    assert record.action == "links.exported"
    assert record.details == {"what": "links", "format": "csv", "filters": {"customer": "ada"}}


def test_an_auditor_cannot_export_another_banks_links(seeded, auditor):
    other = seeded[1]

    response = auditor.get(reverse("linking:links_export_csv", kwargs={"bank": other.slug}))

    assert response.status_code == 404


@pytest.fixture
def registered_sections():
    from django.utils.html import format_html

    from linking import sections

    def sent(consent):
        return format_html("<p>Sent under consent {}</p>", consent.pk)

    def broken(consent):
        raise RuntimeError("boom")

    sections.register_link_section("test.sent", "Sent here", sent, order=1)
    sections.register_link_section("test.broken", "Broken here", broken, order=2)
    yield
    sections.unregister_link_section("test.sent")
    sections.unregister_link_section("test.broken")


def test_a_link_page_shows_the_sections_other_apps_add_and_survives_a_broken_one(
    seeded, auditor, registered_sections
):
    bank, _, consents = seeded
    consent = consents[1]

    response = auditor.get(
        reverse("linking:link_detail", kwargs={"bank": bank.slug, "consent": consent.pk})
    )

    assert response.status_code == 200
    page = response.content.decode()
    assert "Sent here" in page and f"Sent under consent {consent.pk}" in page
    assert "Broken here" in page and "This section could not be loaded." in page


def test_a_link_page_shows_each_version_with_the_words_agreed_to(seeded, auditor):
    bank, _, consents = seeded
    consent = consents[1]
    services.consent_terms_record(
        consent=consent,
        text="Link Harbour Bank to Messenger? Which updates? Balances",
        language="en",
    )

    page = auditor.get(
        reverse("linking:link_detail", kwargs={"bank": bank.slug, "consent": consent.pk})
    ).content.decode()

    assert "Versions and the words agreed to" in page
    assert "Link Harbour Bank to Messenger? Which updates? Balances" in page
    assert consent.versions.get().text.digest in page
