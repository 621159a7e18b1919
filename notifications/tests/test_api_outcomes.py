import pytest
from rest_framework.test import APIClient

from linking.tests.factories import AccountFactory, CustomerFactory
from notifications.tests.factories import event_payload
from notifications.tests.problems import assert_problem
from portal.tests.factories import BankFactory, api_key_for

pytestmark = pytest.mark.django_db

OUTCOMES = "/api/v1/outcomes"


def post_events(api, events):
    response = api.post("/api/v1/events", {"events": events}, format="json")
    assert response.status_code == 202
    return response


def walk(api, cursor=None, limit=7):
    """Every outcome from `cursor` on, page by page; returns (outcomes, final cursor)."""
    seen = []
    while True:
        params = {"limit": limit, **({"cursor": cursor} if cursor else {})}
        page = api.get(OUTCOMES, params).json()
        seen += page["outcomes"]
        cursor = page["next_cursor"]
        if not page["has_more"]:
            return seen, cursor


def test_the_cursor_pages_through_every_outcome_exactly_once(api, card):
    posted = [event_payload(account=card) for _ in range(23)]
    post_events(api, posted[:10])
    post_events(api, [*posted[10:], event_payload(account=card, data={"amount": "x"})])

    seen, cursor = walk(api)

    assert [o["event_id"] for o in seen if o["type"] == "event.accepted"] == [
        p["id"] for p in posted
    ]
    assert len(seen) == 24
    assert len({o["id"] for o in seen}) == 24
    assert api.get(OUTCOMES, {"cursor": cursor}).json()["outcomes"] == []


def test_the_next_walk_starts_where_the_last_one_ended(api, card):
    post_events(api, [event_payload(account=card)])
    _, cursor = walk(api)
    later = event_payload(account=card)
    post_events(api, [later])

    seen, _ = walk(api, cursor)

    assert [o["event_id"] for o in seen] == [later["id"]]


def test_a_rejected_event_appears_with_its_reasons(api, card):
    post_events(api, [event_payload(account=card, id="evt-bad", data={"currency": "ZZZ"})])

    (outcome,) = api.get(OUTCOMES).json()["outcomes"]

    assert outcome["type"] == "event.rejected"
    assert outcome["event_id"] == "evt-bad"
    assert outcome["notification_id"] is None
    assert outcome["reasons"] == [
        {"path": "data.currency", "reason": "must be an ISO 4217 currency code such as EUR"}
    ]


def test_duplicates_add_no_outcome(api, card):
    payload = event_payload(account=card)
    post_events(api, [payload])
    post_events(api, [payload])

    seen, _ = walk(api)

    assert len(seen) == 1


def test_a_bank_sees_only_its_own_outcomes(api, card):
    other_bank = BankFactory()
    other = AccountFactory(customer=CustomerFactory(bank=other_bank))
    other_api = APIClient()
    other_api.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key_for(other_bank).secret}")
    post_events(other_api, [event_payload(account=other)])

    assert api.get(OUTCOMES).json()["outcomes"] == []


@pytest.mark.parametrize("cursor", ["not-a-cursor", "bzE6LTE", "!!"])
def test_a_cursor_the_api_did_not_issue_is_a_400_problem(api, card, cursor):
    body = assert_problem(api.get(OUTCOMES, {"cursor": cursor}), 400)

    assert body["errors"] == [{"path": "cursor", "reason": "is not a cursor this API issued"}]


@pytest.mark.parametrize(
    "limit", ["0", "1001", "ten", "-1", "", "\u00b2", "\u0661\u0660", "1e2", "+5"]
)
def test_a_limit_that_is_not_a_whole_number_from_1_to_1000_is_a_400_problem(api, card, limit):
    assert_problem(api.get(OUTCOMES, {"limit": limit}), 400)


def test_an_empty_cursor_is_a_400_problem_that_says_to_leave_it_out(api, card):
    post_events(api, [event_payload(account=card)])

    body = assert_problem(api.get(OUTCOMES, {"cursor": ""}), 400)

    assert body["errors"] == [
        {"path": "cursor", "reason": "must not be empty; leave it out to read from the start"}
    ]


@pytest.mark.parametrize(
    ("query", "path", "reason"),
    [
        ("curosr=bzE6MA&limit=5", "curosr", "is not a parameter of this operation"),
        ("=0", "", "has a parameter whose name is not allowed"),
        ("4111111111111111=1", "", "has a parameter whose name is not allowed"),
    ],
)
def test_a_parameter_the_feed_does_not_take_is_a_400_problem(api, card, query, path, reason):
    post_events(api, [event_payload(account=card)])

    response = api.get(f"{OUTCOMES}?{query}")

    body = assert_problem(response, 400)
    assert body["errors"] == [{"path": path, "reason": reason}]
    assert "4111" not in response.content.decode()
