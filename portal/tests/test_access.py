"""The staff URL map, walked in full: every staff URL is checked for tenancy and roles.

URLs are read from the resolver, not listed here, so a new staff page is covered as soon
as it is routed. A URL parameter without a value below fails loudly instead of being
skipped.
"""

import re
from types import SimpleNamespace

import pytest
from django.apps import apps
from django.urls import reverse
from django.utils import timezone

from portal.access import ADMIN, AUDITOR, OPERATOR, Access
from portal.audit import Actor
from portal.models import (
    AuditEvent,
    MessageTemplate,
    NotificationPolicy,
    StaffMembership,
    TextVersion,
)
from portal.services import audit_checkpoint_sign, audit_record
from portal.tests.factories import (
    BankFactory,
    PasskeyFactory,
    StaffMembershipFactory,
    UserFactory,
    api_key_for,
    integration_for,
    invitation_for,
)
from portal.tests.urlmap import STAFF_URLS, StaffUrl

pytestmark = pytest.mark.django_db

ROLES = (ADMIN, OPERATOR, AUDITOR)

BANK_URLS = [url for url in STAFF_URLS if url.access and url.access.scope == "bank"]
SIGNED_IN_URLS = [url for url in STAFF_URLS if url.access and url.access.scope != "public"]
PLATFORM_URLS = [url for url in STAFF_URLS if url.access and url.access.scope == "platform"]
OBJECT_URLS = [url for url in BANK_URLS if set(url.params) - {"bank"}]
# What an auditor may post: proofs that only read what they check and record themselves
# (Verify now). Anything else an auditor posts is refused.
AUDITOR_PROOFS = {"portal:audit_integrity": "audit.integrity_verified"}
# Whatever holds credentials, keys or staff is for admins (and, read-only, auditors).
ADMIN_ONLY_NAMES = re.compile(r"credential|secret|api_key|staff_|invitation|membership")


def _denials():
    """(url, role, method, expected status) for every request a role may not make."""
    for url in BANK_URLS:
        access = url.access
        for role in ROLES:
            if role not in access.view:
                yield url, role, "get", 403 if (access.view or role not in access.roles) else 405
            if role not in access.change:
                yield url, role, "post", 403 if (access.change or role not in access.roles) else 405


DENIALS = [case for case in _denials() if case[3] == 403]


@pytest.fixture
def world():
    """Two banks, each with one staff member per role and one of every kind of object."""
    banks = {}
    for label, page_id in (("a", "1234567890"), ("b", "1234567891")):
        bank = BankFactory(slug=f"bank-{label}", notification_defaults=True)
        integration_for(bank, page_id=page_id)
        members = {role: StaffMembershipFactory(bank=bank, role=role).user for role in ROLES}
        objects = {
            "key": api_key_for(bank).api_key.pk,
            "invitation": invitation_for(bank).invitation.pk,
            "membership": StaffMembership.objects.get(user=members[OPERATOR]).pk,
            "policy": NotificationPolicy.objects.filter(bank=bank).first().pk,
            "template": MessageTemplate.objects.filter(bank=bank).first().pk,
            "version": text_version_of(bank, "message_template"),
            "policy_version": text_version_of(bank, "notification_policy"),
            "checkpoint": audit_checkpoint_sign(actor=Actor.system("test"), bank=bank)[0].pk,
            "entry": audit_record(actor=Actor.system("test"), action="test.seeded", bank=bank).pk,
            "passkey": PasskeyFactory(user=members[ADMIN]).pk,
            **linking_objects(bank),
            **notification_objects(bank),
            **conversation_objects(bank),
        }
        banks[label] = SimpleNamespace(bank=bank, members=members, objects=objects)
    return banks


def text_version_of(bank, subject: str) -> int:
    return TextVersion.objects.filter(bank=bank, subject=subject).values_list("pk", flat=True)[0]


def linking_objects(bank) -> dict:
    """A customer and a consent: the URL map spans the staff pages of every app."""
    customer = apps.get_model("linking", "Customer").objects.create(
        bank=bank, external_id=f"cu-{bank.slug}", name="Ada Lovelace"
    )
    consent = apps.get_model("linking", "Consent").objects.create(
        bank=bank, customer=customer, purpose="Updates", duration_days=90
    )
    return {"customer": customer.pk, "consent": consent.pk}


def notification_objects(bank) -> dict:
    """A dead-lettered notification, for the dead letters' replay URLs."""
    customer = apps.get_model("linking", "Customer").objects.create(
        bank=bank, external_id=f"cu-dead-{bank.slug}", name="Grace Hopper"
    )
    account = apps.get_model("linking", "Account").objects.create(
        bank=bank,
        customer=customer,
        external_id="chk-1",
        kind="checking",
        name="Checking",
        last4="1234",
        currency="EUR",
        balance="10.00",
    )
    consent = apps.get_model("linking", "Consent").objects.create(
        bank=bank, customer=customer, purpose="Updates", duration_days=90
    )
    event = apps.get_model("notifications", "Event").objects.create(
        bank=bank,
        event_id=f"evt-{bank.slug}",
        type="fraud.alert",
        customer=customer,
        account=account,
        occurred_at=timezone.now(),
        data={},
    )
    notification = apps.get_model("notifications", "Notification").objects.create(
        bank=bank,
        event=event,
        consent=consent,
        account=account,
        event_type="fraud.alert",
        page_id="1",
        psid=f"9{bank.pk}",
        sequence=1,
        locale="en",
        state="dead",
        reason="refused",
        finished_at=timezone.now(),
    )
    return {"notification": notification.pk}


def conversation_objects(bank) -> dict:
    """A conversation in the agent inbox, a callback to the bank, a canned reply and a draft
    of it."""
    conversation = apps.get_model("conversation", "Conversation").objects.create(
        bank=bank, page_id="1", psid=f"8{bank.pk}", needs_person=True
    )
    callback = apps.get_model("conversation", "BankCallback").objects.create(
        bank=bank, type="fraud_alert.answered", webhook_id=f"msg_{bank.slug}", body="{}"
    )
    text = apps.get_model("conversation", "ConversationText").objects.create(
        bank=bank, kind="fraud_denied", locale="en", body="We blocked the card."
    )
    version = TextVersion.objects.create(
        bank=bank,
        subject="conversation_text",
        key=f"{text.kind}:{text.locale}",
        number=1,
        body=text.body,
        state=TextVersion.State.APPROVED,
        author_label="system",
        reviewer_label="system",
        reviewed_at=timezone.now(),
        live_from=timezone.now(),
    )
    canned = apps.get_model("conversation", "CannedReply").objects.create(
        bank=bank, locale="en", title="Card blocked", body="Your card is blocked."
    )
    canned_version = TextVersion.objects.create(
        bank=bank,
        subject="canned_reply",
        key=f"{canned.locale}:{canned.title}",
        number=1,
        body=canned.body,
        author_label="system",
    )
    return {
        "conversation": conversation.pk,
        "callback": callback.pk,
        "text_version": version.pk,
        "canned": canned.pk,
        "canned_version": canned_version.pk,
    }


def url_of(url: StaffUrl, *, bank_slug: str, objects: dict) -> str:
    return url.reverse(bank=bank_slug, **objects)


def bank_url(url: StaffUrl, side) -> str:
    return url_of(url, bank_slug=side.bank.slug, objects=side.objects)


def test_the_url_map_has_staff_pages_of_every_kind():
    scopes = {url.access.scope for url in STAFF_URLS if url.access}

    assert scopes == {"public", "account", "platform", "bank"}
    assert len(BANK_URLS) >= 15


@pytest.mark.parametrize("url", STAFF_URLS, ids=str)
def test_every_staff_url_goes_through_the_access_mechanism(url):
    assert not url.name.endswith(":"), f"{url.route} needs a name"
    assert isinstance(url.access, Access), f"{url.name} is not wrapped by portal.access"
    if url.access.scope == "bank":
        assert "bank" in url.params and url.access.roles


@pytest.mark.parametrize("method", ["get", "post"])
@pytest.mark.parametrize("url", BANK_URLS, ids=str)
def test_staff_of_another_bank_get_404_on_every_bank_url(world, sign_in, url, method):
    client = sign_in(world["a"].members[ADMIN])

    response = getattr(client, method)(bank_url(url, world["b"]))

    assert response.status_code == 404


@pytest.mark.parametrize("url", OBJECT_URLS, ids=str)
def test_an_object_of_another_bank_is_404_under_ones_own_bank(world, sign_in, url):
    client = sign_in(world["a"].members[ADMIN])
    address = url_of(url, bank_slug=world["a"].bank.slug, objects=world["b"].objects)
    before = AuditEvent.objects.count()

    response = client.post(address) if url.access.change else client.get(address)

    assert response.status_code == 404
    assert AuditEvent.objects.count() == before


@pytest.mark.parametrize(
    ("url", "role", "method", "status"),
    DENIALS,
    ids=[f"{url}-{role}-{method}" for url, role, method, _ in DENIALS],
)
def test_a_role_without_the_permission_gets_403(world, sign_in, url, role, method, status):
    client = sign_in(world["a"].members[role])
    before = AuditEvent.objects.count()

    response = getattr(client, method)(bank_url(url, world["a"]))

    assert response.status_code == status
    assert AuditEvent.objects.count() == before


def test_auditors_may_post_only_the_listed_proofs():
    assert {url.name for url in BANK_URLS if AUDITOR in url.access.change} == set(AUDITOR_PROOFS)


@pytest.mark.parametrize("url", [u for u in BANK_URLS if u.name in AUDITOR_PROOFS], ids=str)
def test_an_auditors_proof_records_only_itself(world, sign_in, url):
    client = sign_in(world["a"].members[AUDITOR])
    before = AuditEvent.objects.count()

    response = client.post(bank_url(url, world["a"]))

    assert response.status_code == 302
    (entry,) = AuditEvent.objects.order_by("pk")[before:]
    assert entry.action == AUDITOR_PROOFS[url.name]
    assert entry.bank == world["a"].bank


@pytest.mark.parametrize("url", [u for u in BANK_URLS if u.name not in AUDITOR_PROOFS], ids=str)
def test_an_auditor_cannot_post_any_change(world, sign_in, url):
    client = sign_in(world["a"].members[AUDITOR])
    before = AuditEvent.objects.count()

    response = client.post(bank_url(url, world["a"]), {"name": "x", "reason": "x"})

    assert response.status_code == (403 if url.access.change else 405)
    assert AuditEvent.objects.count() == before


@pytest.mark.parametrize(
    "url", [url for url in BANK_URLS if ADMIN_ONLY_NAMES.search(url.name)], ids=str
)
def test_an_operator_never_reaches_credentials_keys_or_staff(world, sign_in, url):
    client = sign_in(world["a"].members[OPERATOR])
    address = bank_url(url, world["a"])

    assert client.get(address).status_code == 403
    assert client.post(address).status_code == 403


@pytest.mark.parametrize("url", SIGNED_IN_URLS, ids=str)
def test_an_anonymous_visitor_is_sent_to_sign_in(world, client, url):
    address = bank_url(url, world["a"])

    response = client.get(address)

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("portal:login") + "?next=")


@pytest.mark.parametrize("url", PLATFORM_URLS, ids=str)
def test_platform_pages_refuse_bank_admins(world, sign_in, url):
    client = sign_in(world["a"].members[ADMIN])

    assert client.get(bank_url(url, world["a"])).status_code == 403
    assert client.post(bank_url(url, world["a"])).status_code == 403


VIEWERS = [
    (url, role)
    for url in BANK_URLS
    for role in [*sorted(url.access.view), "platform_admin"]
    if url.access.view
]


@pytest.mark.parametrize(("url", "role"), VIEWERS, ids=[f"{url}-{role}" for url, role in VIEWERS])
def test_each_role_can_open_every_page_it_may_view(world, sign_in, url, role):
    if role == "platform_admin":
        user = UserFactory(is_superuser=True, is_staff=True)
    else:
        user = world["a"].members[role]
    client = sign_in(user)

    response = client.get(bank_url(url, world["a"]))

    assert response.status_code == 200
    if response.streaming:  # an export: its rows are the bank's, named by id
        assert b"".join(response.streaming_content)
    else:
        assert world["a"].bank.name in response.content.decode()


def test_an_admin_signed_in_without_a_second_factor_is_signed_out(world, client):
    client.force_login(world["a"].members[ADMIN])

    response = client.get(reverse("portal:dashboard", kwargs={"bank": "bank-a"}))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("portal:login"))
    assert "_auth_user_id" not in client.session


@pytest.mark.parametrize("role", [OPERATOR, AUDITOR])
def test_operators_and_auditors_signed_in_without_a_second_factor_are_signed_out(
    world, client, role
):
    client.force_login(world["a"].members[role])

    response = client.get(reverse("portal:dashboard", kwargs={"bank": "bank-a"}))

    assert response.status_code == 302
    assert "_auth_user_id" not in client.session


def test_where_the_deployment_relaxes_it_an_operator_needs_no_second_factor(
    world, client, settings
):
    settings.STAFF_TWO_FACTOR_FOR_ALL = False
    client.force_login(world["a"].members[OPERATOR])

    response = client.get(reverse("portal:dashboard", kwargs={"bank": "bank-a"}))

    assert response.status_code == 200


def test_a_signed_in_user_with_no_bank_role_is_turned_away(client):
    client.force_login(UserFactory())

    response = client.get(reverse("portal:bank_list"))

    assert response.status_code == 302
    assert "_auth_user_id" not in client.session
