import pytest
from rest_framework.test import APIClient

from linking.api.tests.problems import assert_problem
from linking.api.validators import CARD_NUMBER_REASON
from linking.models import Account, Customer
from linking.tests.factories import AccountFactory, CustomerFactory
from portal.audit import Actor
from portal.models import AuditEvent
from portal.services import api_key_revoke
from portal.tests.factories import BankFactory

pytestmark = pytest.mark.django_db


def account(**overrides) -> dict:
    return {
        "id": "chk-001",
        "kind": "checking",
        "name": "Everyday account",
        "last4": "4821",
        "currency": "EUR",
        "balance": "1204.50",
        **overrides,
    }


def body(**overrides) -> dict:
    return {"name": "Ana Souza", "locale": "pt-BR", "accounts": [account()], **overrides}


def put(api, customer_id="cu-ana", data=None, **extra):
    return api.put(f"/api/v1/customers/{customer_id}", data or body(), format="json", **extra)


def test_a_new_customer_is_created_with_201(api, bank):
    response = put(api, data=body(directory={"username": "ana", "password": "open sesame 42"}))

    assert response.status_code == 201
    customer = Customer.objects.get(bank=bank, external_id="cu-ana")
    assert (customer.name, customer.locale) == ("Ana Souza", "pt-BR")
    assert response.json()["accounts"] == [
        {
            "id": "chk-001",
            "kind": "checking",
            "name": "Everyday account",
            "last4": "4821",
            "currency": "EUR",
            "balance": "1204.50",
            "active": True,
        }
    ]
    assert response.json()["directory"] == {"username": "ana"}


def test_the_response_never_echoes_the_password(api, bank):
    response = put(api, data=body(directory={"username": "ana", "password": "open sesame 42"}))

    assert "open sesame" not in response.content.decode()
    assert "password" not in response.content.decode()


def test_an_existing_customer_is_updated_with_200(api, bank):
    put(api)

    response = put(api, data=body(name="Ana M. Souza"))

    assert response.status_code == 200
    assert Customer.objects.get(bank=bank, external_id="cu-ana").name == "Ana M. Souza"


def test_an_account_left_out_is_deactivated(api, bank):
    put(api, data=body(accounts=[account(), account(id="sav-1", kind="savings")]))

    response = put(api, data=body(accounts=[account(id="sav-1", kind="savings")]))

    states = {a["id"]: a["active"] for a in response.json()["accounts"]}
    assert states == {"chk-001": False, "sav-1": True}
    assert not Account.objects.get(external_id="chk-001").active


def test_null_directory_removes_the_login_and_leaving_it_out_keeps_it(api, bank):
    put(api, data=body(directory={"username": "ana", "password": "open sesame 42"}))
    kept = put(api).json()["directory"]

    removed = put(api, data=body(directory=None)).json()["directory"]

    assert kept == {"username": "ana"}
    assert removed is None


def test_a_full_number_as_last4_is_refused_and_nothing_is_written(api, bank):
    response = put(api, data=body(accounts=[account(last4="4111111111111111")]))

    problem = assert_problem(response, 400)
    assert [e["path"] for e in problem["errors"]] == ["accounts[0].last4"]
    assert "4111" not in response.content.decode()
    assert not Customer.objects.exists()


def test_a_card_number_in_any_text_is_refused(api, bank):
    response = put(api, data=body(accounts=[account(name="Card 4111 1111 1111 1111")]))

    problem = assert_problem(response, 400)
    assert problem["errors"] == [{"path": "accounts[0].name", "reason": CARD_NUMBER_REASON}]
    assert not Customer.objects.exists()


def test_a_card_number_as_the_customer_id_is_refused(api, bank):
    problem = assert_problem(put(api, customer_id="4111111111111111"), 400)

    assert problem["errors"] == [{"path": "customer_id", "reason": CARD_NUMBER_REASON}]


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"accounts": [account(kind="loan")]}, "accounts[0].kind"),
        ({"accounts": [account(currency="EURO")]}, "accounts[0].currency"),
        ({"accounts": [account(balance="12.345")]}, "accounts[0].balance"),
        ({"accounts": [account(id="has space")]}, "accounts[0].id"),
        ({"accounts": [account(), account()]}, "accounts"),
        ({"locale": "portuguese!"}, "locale"),
        ({"name": ""}, "name"),
        ({"directory": {"username": "ana"}}, "directory.password"),
    ],
)
def test_invalid_input_is_a_400_problem_naming_the_field(api, bank, change, path):
    problem = assert_problem(put(api, data=body(**change)), 400)

    assert path in [e["path"] for e in problem["errors"]]
    assert not Customer.objects.exists()


def test_an_invalid_choice_is_not_echoed(api, bank):
    response = put(api, data=body(accounts=[account(kind="<script>")]))

    assert "<script>" not in response.content.decode()


def test_malformed_json_is_a_400_problem(api, bank):
    response = api.put("/api/v1/customers/cu-ana", '{"name": ', content_type="application/json")

    assert_problem(response, 400)


def test_a_key_cannot_touch_another_banks_customer(api, bank):
    theirs = CustomerFactory(bank=BankFactory(), external_id="cu-ana", name="Theirs")
    AccountFactory(customer=theirs, external_id="chk-001")

    response = put(api, data=body(accounts=[]))

    assert response.status_code == 201
    theirs.refresh_from_db()
    assert theirs.name == "Theirs"
    assert theirs.accounts.get().active
    assert Customer.objects.get(bank=bank, external_id="cu-ana").name == "Ana Souza"


def test_the_write_is_audited_as_the_api_key(api, issued, bank):
    put(api)

    entry = AuditEvent.objects.get(action="customer.created")
    assert (entry.actor_type, entry.actor_id) == ("api_key", str(issued.api_key.pk))


def test_a_revoked_key_gets_401(api, issued, bank):
    api_key_revoke(actor=Actor.system("test"), api_key=issued.api_key)

    assert_problem(put(api), 401)
    assert not Customer.objects.exists()


def test_a_retry_with_an_idempotency_key_replays_201(api, bank):
    first = put(api, HTTP_IDEMPOTENCY_KEY="put-1")

    again = put(api, HTTP_IDEMPOTENCY_KEY="put-1")

    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json()
    assert AuditEvent.objects.filter(action__startswith="customer.").count() == 1


def test_a_different_body_with_the_same_idempotency_key_is_422(api, bank):
    put(api, HTTP_IDEMPOTENCY_KEY="put-1")

    assert_problem(put(api, data=body(name="Other"), HTTP_IDEMPOTENCY_KEY="put-1"), 422)


def test_unauthenticated_calls_are_refused(bank):
    assert_problem(APIClient().put("/api/v1/customers/x", body(), format="json"), 401)


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"nickname": "Ana"}, "nickname"),
        ({"accounts": [account(iban="PT50 0002 0123 1234 5678 9015 4")]}, "accounts[0].iban"),
        (
            {"directory": {"username": "ana", "password": "open sesame 42", "pin": 1}},
            "directory.pin",
        ),
    ],
)
def test_an_unknown_field_is_a_400_problem_naming_it_and_nothing_is_written(
    api, bank, change, path
):
    problem = assert_problem(put(api, data=body(**change)), 400)

    assert {"path": path, "reason": "is not a known field"} in problem["errors"]
    assert not Customer.objects.exists()


def test_an_unknown_field_whose_name_is_a_card_number_is_refused_without_echoing_it(api, bank):
    response = put(api, data=body(**{"4111111111111111": "x"}))

    problem = assert_problem(response, 400)
    assert {"path": "", "reason": "has a field whose name is not allowed"} in problem["errors"]
    assert "4111" not in response.content.decode()


@pytest.mark.parametrize(
    "customer_id", ["cu%2Fana", "cu%2F", "a" * 65, "cu%20ana", "a%0Ab", "a%0D%0Ab", "a%E2%80%A8b"]
)
def test_a_customer_id_the_api_cannot_hold_is_a_400_problem_naming_it(api, bank, customer_id):
    problem = assert_problem(put(api, customer_id=customer_id), 400)

    assert problem["errors"] == [
        {
            "path": "customer_id",
            "reason": "must be 1 to 64 letters, digits, dots, colons, dashes or underscores",
        }
    ]
    assert not Customer.objects.exists()


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"name": 42}, "name"),
        ({"accounts": [account(balance=1204.5)]}, "accounts[0].balance"),
        ({"accounts": [account(balance=12)]}, "accounts[0].balance"),
        ({"accounts": [account(balance="1e3")]}, "accounts[0].balance"),
        ({"accounts": [account(balance=" 12.50")]}, "accounts[0].balance"),
        ({"accounts": [account(balance="+12.50")]}, "accounts[0].balance"),
        ({"accounts": [account(last4=4821)]}, "accounts[0].last4"),
    ],
)
def test_a_value_outside_the_schemas_type_or_pattern_is_a_400_problem(api, bank, change, path):
    problem = assert_problem(put(api, data=body(**change)), 400)

    assert [e["path"] for e in problem["errors"]] == [path]
    assert not Customer.objects.exists()
