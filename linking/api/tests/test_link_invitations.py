"""`POST /api/v1/customers/<id>/link-invitations`: the bank's backend invites a signed-in
customer to link Messenger, and the URL it gets opens the consent screen once."""

from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from rest_framework.test import APIClient

from linking.api.tests.problems import assert_problem
from linking.models import LinkingFlows, LinkInvitation
from linking.tests.factories import AccountFactory, CustomerFactory, IntegrationFactory
from portal.models import AuditEvent, MessengerIntegration
from portal.tests.factories import BankFactory, api_key_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def ana(bank):
    IntegrationFactory(bank=bank, page_id="1122334455")
    customer = CustomerFactory(bank=bank, external_id="cu-ana", name="Ana Souza")
    AccountFactory(customer=customer, external_id="chk-001", last4="4821")
    return customer


def invite(api, customer_id="cu-ana", data=None, **extra):
    return api.post(
        f"/api/v1/customers/{customer_id}/link-invitations", data, format="json", **extra
    )


def path_of(url: str) -> str:
    return urlsplit(url).path


def test_an_invitation_is_a_single_use_url_valid_for_15_minutes(api, ana):
    before = timezone.now()

    response = invite(api)

    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == {"url", "expires_at"}
    expires_at = parse_datetime(body["expires_at"])
    assert before + timedelta(minutes=14) < expires_at <= timezone.now() + timedelta(minutes=15)
    assert path_of(body["url"]).startswith("/link/harbour/invitation/")


def test_the_url_opens_the_consent_screen_for_that_customer(api, ana, bank, client):
    url = invite(api).json()["url"]

    opened = client.get(path_of(url), follow=True)

    assert opened.status_code == 200
    page = opened.content.decode()
    assert f"Link {bank.name} to Messenger?" in page
    assert "Hello Ana Souza" in page
    assert "•••• 4821" in page


def test_the_url_opens_once(api, ana, client):
    url = invite(api).json()["url"]
    client.get(path_of(url))

    again = client.get(path_of(url))

    assert again.status_code == 410
    assert "already used" in again.content.decode()


def test_another_browser_cannot_use_an_opened_url(api, ana, client):
    url = invite(api).json()["url"]
    client.get(path_of(url))

    stranger = APIClient().get(path_of(url))

    assert stranger.status_code == 410


def test_an_expired_invitation_does_not_open(api, ana, client):
    url = invite(api).json()["url"]
    LinkInvitation.objects.update(expires_at=timezone.now() - timedelta(seconds=1))

    response = client.get(path_of(url))

    assert response.status_code == 410
    assert "expired" in response.content.decode()
    assert LinkInvitation.objects.get().opened_at is None


def test_a_made_up_invitation_does_not_open(ana, client):
    response = client.get("/link/harbour/invitation/not-an-invitation")

    assert response.status_code == 410


def test_the_token_is_stored_only_as_a_keyed_digest(api, ana):
    token = path_of(invite(api).json()["url"]).rsplit("/", 1)[1]

    invitation = LinkInvitation.objects.get()

    assert len(token) == 64  # 256 bits
    assert token not in invitation.token_digest and token not in invitation.token_seed
    assert invitation.token_digest == LinkInvitation.token_digest_of(token)


def test_a_shorter_lifetime_can_be_asked_for(api, ana):
    response = invite(api, data={"expires_in": 120})

    expires_at = parse_datetime(response.json()["expires_at"])
    assert expires_at <= timezone.now() + timedelta(seconds=120)


def test_the_invitation_is_audited_with_the_api_key_as_actor(api, ana, issued):
    invite(api)

    entry = AuditEvent.objects.get(action="link_invitation.issued")
    assert (entry.actor_type, entry.actor_label) == ("api_key", "Core banking")
    assert entry.target_id == str(ana.pk)


def test_a_customer_of_another_bank_is_not_found(api, ana):
    other = BankFactory(slug="rival")
    IntegrationFactory(bank=other)
    CustomerFactory(bank=other, external_id="cu-rival")

    response = invite(api, customer_id="cu-rival")

    assert_problem(response, 404)
    assert not LinkInvitation.objects.exists()


def test_another_banks_key_cannot_invite_this_banks_customer(ana):
    other = BankFactory(slug="rival")
    IntegrationFactory(bank=other)
    outsider = APIClient()
    outsider.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key_for(other).secret}")

    response = invite(outsider, customer_id="cu-ana")

    body = assert_problem(response, 404)
    assert "Ana" not in str(body)
    assert not LinkInvitation.objects.exists()


def test_an_unknown_customer_is_not_found(api, ana):
    assert_problem(invite(api, customer_id="cu-nobody"), 404)


def test_without_a_key_nothing_is_issued(ana):
    response = invite(APIClient())

    assert_problem(response, 401)
    assert not LinkInvitation.objects.exists()


@pytest.mark.parametrize(
    ("data", "path"),
    [
        ([], ""),
        ("just text", ""),
        ({"expires_in": 901}, "expires_in"),
        ({"expires_in": 59}, "expires_in"),
        ({"expires_in": "900"}, "expires_in"),
        ({"expires_in": 90.5}, "expires_in"),
        ({"expires_in": True}, "expires_in"),
        ({"expires_in": None}, "expires_in"),
        ({"expries_in": 900}, "expries_in"),
    ],
)
def test_a_bad_body_is_a_400_problem_naming_the_field(api, ana, data, path):
    response = invite(api, data=data)

    body = assert_problem(response, 400)
    assert path in [error["path"] for error in body["errors"]]
    assert not LinkInvitation.objects.exists()


def test_a_body_that_is_not_json_is_a_400_problem(api, ana):
    response = api.post(
        "/api/v1/customers/cu-ana/link-invitations", "{not json", content_type="application/json"
    )

    assert_problem(response, 400)
    assert not LinkInvitation.objects.exists()


def test_a_bad_customer_id_is_a_400_problem(api, ana):
    body = assert_problem(invite(api, customer_id="cu ana!"), 400)

    assert body["errors"][0]["path"] == "customer_id"


def test_a_bank_that_does_not_offer_invitations_gets_a_409(api, ana, bank):
    LinkingFlows.objects.create(bank=bank, log_in=True, invitations=False)

    body = assert_problem(invite(api), 409)

    assert "m.me invitation" in body["detail"]
    assert not LinkInvitation.objects.exists()


def test_a_bank_that_paused_messenger_gets_a_409(api, ana, bank):
    MessengerIntegration.objects.filter(bank=bank).update(status=MessengerIntegration.Status.PAUSED)

    assert_problem(invite(api), 409)


def test_a_retry_with_the_same_idempotency_key_answers_the_same_invitation(api, ana):
    first = invite(api, HTTP_IDEMPOTENCY_KEY="invite-ana-1")
    again = invite(api, HTTP_IDEMPOTENCY_KEY="invite-ana-1")

    assert again.status_code == 201
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert LinkInvitation.objects.count() == 1


def test_a_retry_stores_the_url_nowhere(api, ana):
    from portal.models import IdempotencyRecord

    url = invite(api, HTTP_IDEMPOTENCY_KEY="invite-ana-1").json()["url"]
    token = path_of(url).rsplit("/", 1)[1]

    assert not IdempotencyRecord.objects.filter(body__contains=token).exists()
    invitation = LinkInvitation.objects.get()
    assert token not in " ".join(str(v) for v in vars(invitation).values())


def test_the_replayed_url_still_opens_once(api, ana, client):
    invite(api, HTTP_IDEMPOTENCY_KEY="invite-ana-1")
    url = invite(api, HTTP_IDEMPOTENCY_KEY="invite-ana-1").json()["url"]

    assert client.get(path_of(url)).status_code == 302
    assert client.get(path_of(url)).status_code == 410


def test_the_same_key_with_another_body_is_a_422(api, ana):
    invite(api, HTTP_IDEMPOTENCY_KEY="invite-ana-1")

    response = invite(api, data={"expires_in": 300}, HTTP_IDEMPOTENCY_KEY="invite-ana-1")

    assert_problem(response, 422)
    assert LinkInvitation.objects.count() == 1


def test_the_same_key_for_another_customer_is_a_422(api, ana, bank):
    CustomerFactory(bank=bank, external_id="cu-ben")
    invite(api, HTTP_IDEMPOTENCY_KEY="invite-1")

    response = invite(api, customer_id="cu-ben", HTTP_IDEMPOTENCY_KEY="invite-1")

    assert_problem(response, 422)
    assert LinkInvitation.objects.count() == 1


def test_a_key_after_its_24_hours_mints_a_new_invitation(api, ana):
    first = invite(api, HTTP_IDEMPOTENCY_KEY="invite-ana-1").json()
    LinkInvitation.objects.update(created_at=timezone.now() - timedelta(hours=25))

    again = invite(api, HTTP_IDEMPOTENCY_KEY="invite-ana-1")

    assert again.status_code == 201 and "Idempotent-Replayed" not in again
    assert again.json()["url"] != first["url"]
    assert LinkInvitation.objects.count() == 2


def test_a_malformed_idempotency_key_is_a_400_problem(api, ana):
    body = assert_problem(invite(api, HTTP_IDEMPOTENCY_KEY="two words"), 400)

    assert body["errors"][0]["path"] == "Idempotency-Key"
    assert not LinkInvitation.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_concurrent_identical_requests_issue_one_invitation(issued, ana):
    from core.tests.threads import run_together

    answers = []

    def call(_):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {issued.secret}")
        answers.append(invite(client, HTTP_IDEMPOTENCY_KEY="same"))

    assert run_together(call, range(3)) == []

    assert [a.status_code for a in answers] == [201, 201, 201]
    assert len({a.json()["url"] for a in answers}) == 1
    assert LinkInvitation.objects.count() == 1
