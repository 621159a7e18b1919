"""Data-subject requests: the page, the download, who may do what, and the command line."""

import base64
import json

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from linking import services
from linking.models import Consent, ConsentEvent, Contact, Customer
from linking.services import subject_erase
from linking.tests.factories import AccountFactory, CustomerFactory, IntegrationFactory
from portal.audit import Actor
from portal.models import AuditEvent, StaffMembership
from portal.pseudonyms import pseudonym
from portal.services import audit_record
from portal.tests.factories import BankFactory, StaffMembershipFactory

pytestmark = pytest.mark.django_db

Role = StaffMembership.Role
PSID = "24681357902468"


@pytest.fixture
def bank():
    return BankFactory(slug="harbour", name="Harbour Bank")


@pytest.fixture
def ada(bank):
    """Ada, linked through the real services: consent, code, bound PSID, a contact."""
    IntegrationFactory(bank=bank, page_id="1029384756", status="paused")
    customer = CustomerFactory(bank=bank, external_id="cu-ada", name="Ada Lovelace")
    account = AccountFactory(customer=customer, external_id="ada-cur", last4="1111")
    granted = services.consent_authorise(
        customer=customer,
        accounts=[account],
        scopes=["balances", "fraud_alerts"],
        duration_days=90,
        purpose="Account updates in Messenger",
        page_id="1029384756",
        account_linking_token="linking-token",
    )
    services.link_bind(
        bank=bank, page_id="1029384756", psid=PSID, authorization_code=granted.authorization_code
    )
    Contact.objects.create(
        bank=bank, page_id="1029384756", psid=PSID, last_inbound_at=granted.consent.created_at
    )
    return customer


def url(name, customer, bank=None):
    return reverse(name, kwargs={"bank": (bank or customer.bank).slug, "customer": customer.pk})


def staff(sign_in, bank, role):
    return sign_in(StaffMembershipFactory(bank=bank, role=role).user)


def download(client, customer) -> dict:
    response = client.get(url("linking:subject_export", customer))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")
    return json.loads(b"".join(response.streaming_content))


def test_the_download_holds_the_customer_consents_receipts_and_audit_entries(bank, ada, sign_in):
    document = download(staff(sign_in, bank, Role.AUDITOR), ada)

    part = document["parts"]["linking.customer"]
    assert part["customer"]["id"] == "cu-ada" and part["customer"]["name"] == "Ada Lovelace"
    assert [a["last4"] for a in part["accounts"]] == ["1111"]
    (consent,) = part["consents"]
    assert consent["messenger_link"]["psid"] == PSID
    assert [(e["from"], e["to"]) for e in consent["timeline"]] == [
        (None, "awaiting_authorisation"),
        ("awaiting_authorisation", "authorised"),
    ]
    assert consent["receipt"]["receipt_format"] == "bankside-consent-receipt/2"
    assert consent["receipt"]["shared_with"]["name"].startswith("Messenger")
    assert part["messenger_contacts"] == [
        {"page_id": "1029384756", "psid": PSID, "last_message_at": consent["created_at"]}
    ]
    assert "notifications.messages" in document["parts"]
    actions = [e["action"] for e in document["audit_entries"]]
    assert actions[:2] == ["consent.authorised", "link.bound"]
    assert "subject_data.exported" in actions


def test_the_download_is_audited(bank, ada, sign_in):
    auditor = StaffMembershipFactory(bank=bank, role=Role.AUDITOR).user

    download(sign_in(auditor), ada)

    entry = AuditEvent.objects.get(action="subject_data.exported")
    assert (entry.actor_id, entry.target_type, entry.target_id) == (
        str(auditor.pk),
        "linking.customer",
        str(ada.pk),
    )


def test_audit_entries_about_a_link_hold_a_pseudonym_never_the_psid(bank, ada):
    bound = AuditEvent.objects.get(action="link.bound")

    assert "psid" not in bound.details
    assert bound.details["psid_ref"] == pseudonym(PSID)
    assert not AuditEvent.objects.filter(details__icontains=PSID).exists()
    assert not AuditEvent.objects.filter(actor_label__icontains="Lovelace").exists()


def test_a_bank_auditor_cannot_see_or_download_another_banks_customer(bank, ada, sign_in):
    other = BankFactory(slug="other")
    client = staff(sign_in, other, Role.AUDITOR)

    for name in ("linking:subject_request", "linking:subject_export"):
        assert client.get(url(name, ada, bank=bank)).status_code == 404
        assert client.get(url(name, ada, bank=other)).status_code == 404
    assert not AuditEvent.objects.filter(action="subject_data.exported").exists()


def test_an_auditor_cannot_erase(bank, ada, sign_in):
    client = staff(sign_in, bank, Role.AUDITOR)

    response = client.post(
        url("linking:subject_erase", ada), {"confirm": "cu-ada", "reason": "Request 1"}
    )

    assert response.status_code == 403
    ada.refresh_from_db()
    assert ada.name == "Ada Lovelace" and ada.erased_at is None
    assert Consent.objects.get(customer=ada).psid == PSID
    page = client.get(url("linking:subject_request", ada)).content.decode()
    assert "Download JSON" in page and "Erase personal data" not in page


def test_an_operator_cannot_open_the_page(bank, ada, sign_in):
    client = staff(sign_in, bank, Role.OPERATOR)

    assert client.get(url("linking:subject_request", ada)).status_code == 403
    assert client.get(url("linking:subject_export", ada)).status_code == 403


def test_an_admin_erases_with_the_typed_id_and_a_reason(bank, ada, sign_in):
    client = staff(sign_in, bank, Role.ADMIN)

    response = client.post(
        url("linking:subject_erase", ada), {"confirm": "cu-ada", "reason": "Request 2"}
    )

    assert response.status_code == 302
    ada.refresh_from_db()
    assert ada.name == "Erased customer" and ada.erased_at is not None
    assert ada.directory_username is None
    consent = Consent.objects.get(customer=ada)
    assert consent.status == Consent.Status.REVOKED and consent.psid == ""
    assert not Contact.objects.exists()
    assert not ConsentEvent.objects.filter(actor_label__icontains="Lovelace").exists()
    page = client.get(response["Location"]).content.decode()
    assert "Erased" in page and "Erase personal data" not in page
    with pytest.raises(Exception, match="already erased"):
        subject_erase(customer=ada, actor=Actor.system("test"), reason="again")


def test_an_erasure_without_a_reason_is_refused(bank, ada, sign_in):
    client = staff(sign_in, bank, Role.ADMIN)

    response = client.post(url("linking:subject_erase", ada), {"confirm": "cu-ada", "reason": " "})

    assert response.status_code == 400
    assert Customer.objects.get(pk=ada.pk).erased_at is None


def test_opening_the_page_is_audited(bank, ada, sign_in):
    staff(sign_in, bank, Role.AUDITOR).get(url("linking:subject_request", ada))

    entry = AuditEvent.objects.get(action="customer_data.viewed")
    assert entry.details == {"page": "data-subject request"}


def test_the_command_exports_to_a_file(bank, ada, tmp_path):
    target = tmp_path / "ada.json"

    call_command("subject_request", "export", "--bank", "harbour", "--customer", "cu-ada",
                 "--output", str(target))  # fmt: skip

    document = json.loads(target.read_text())
    assert document["customer_id"] == "cu-ada"
    assert document["parts"]["linking.customer"]["customer"]["name"] == "Ada Lovelace"
    assert AuditEvent.objects.filter(action="subject_data.exported").count() == 1


def test_the_command_erases_only_with_the_id_confirmed(bank, ada, capsys):
    with pytest.raises(CommandError, match="--confirm"):
        call_command("subject_request", "erase", "--bank", "harbour", "--customer", "cu-ada",
                     "--reason", "Request 3")  # fmt: skip
    assert Customer.objects.get(pk=ada.pk).erased_at is None

    call_command("subject_request", "erase", "--bank", "harbour", "--customer", "cu-ada",
                 "--reason", "Request 3", "--confirm", "cu-ada")  # fmt: skip

    assert json.loads(capsys.readouterr().out)["erased"] == "cu-ada"
    assert Customer.objects.get(pk=ada.pk).erased_at is not None


def test_the_command_names_an_unknown_customer(bank):
    with pytest.raises(CommandError, match="No customer"):
        call_command("subject_request", "export", "--bank", "harbour", "--customer", "nobody")


def refused_link(bank) -> None:
    """Messenger binds Ada's PSID with a code that is not valid: audited under her pseudonym."""
    with pytest.raises(services.LinkRefusedError):
        services.link_bind(
            bank=bank, page_id="1029384756", psid=PSID, authorization_code="not-a-real-code"
        )


def test_entries_about_the_psid_are_found_whichever_key_made_their_reference(
    bank, ada, sign_in, settings
):
    from django.utils.crypto import salted_hmac

    old_secret = settings.SECRET_KEY
    # An entry written before pseudonyms had keys of their own: keyed with SECRET_KEY.
    digest = salted_hmac("bankside.pseudonym.psid", PSID, secret=old_secret, algorithm="sha256")
    legacy_ref = "psid:" + base64.b32encode(digest.digest()[:20]).decode().lower()
    audit_record(
        actor=Actor.system("before"),
        action="link.refused",
        bank=bank,
        target_type="messenger.psid",
        target_id=legacy_ref,
    )
    # SECRET_KEY rotates; pseudonyms get a key of their own, the old SECRET_KEY listed last.
    settings.SECRET_KEY = "a-new-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz"
    settings.PSEUDONYM_KEYS = ["pseudonym-key-one-0123456789-abcdefghijkl", old_secret]
    refused_link(bank)
    # Then the pseudonym key itself is replaced.
    settings.PSEUDONYM_KEYS = [
        "pseudonym-key-two-0123456789-abcdefghijkl",
        *settings.PSEUDONYM_KEYS,
    ]
    refused_link(bank)

    document = download(staff(sign_in, bank, Role.AUDITOR), ada)

    refused = [
        e["target"]["id"] for e in document["audit_entries"] if e["action"] == "link.refused"
    ]
    assert len(refused) == len(set(refused)) == 3
    assert refused[0] == legacy_ref
    assert refused[2] == pseudonym(PSID)


def test_erasure_takes_the_names_out_of_the_words_agreed_to_and_keeps_their_digest(bank, ada):
    from linking.models import ConsentText

    consent = Consent.objects.get(customer=ada)
    account = ada.accounts.get()
    text = services.consent_terms_record(
        consent=consent,
        text=f"Hello {ada.name}. Which accounts? {account.name} •••• 1111",
        language="en",
    ).text
    other = services.consent_text_record(
        bank=bank, body="Change: Everyday •••• 1111", language="en"
    )
    digest = text.digest

    subject_erase(customer=ada, actor=Actor.system("test"), reason="Request 3")

    text.refresh_from_db()
    assert "Lovelace" not in text.body and account.name not in text.body
    assert text.body.startswith("Hello Erased customer.") and "•••• 1111" in text.body
    assert text.digest == digest
    assert ConsentText.objects.get(pk=other.pk).body == "Change: Everyday •••• 1111"
