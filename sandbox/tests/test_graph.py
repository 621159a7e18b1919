"""The messenger/ client against the sandbox's Graph API over real HTTP: every error class."""

import json
import time

import httpx
import pytest

from messenger import (
    BadRequestError,
    BadTokenError,
    ConfigError,
    GraphClient,
    LinkingTokenError,
    MessengerError,
    OutsideWindowError,
    PageCredentials,
    PersonUnavailableError,
    ThrottledError,
    TransientError,
    builders,
)
from sandbox.tests.conftest import PAGE_ID, SECRET, TOKEN

pytestmark = pytest.mark.django_db(transaction=True)


def last_call(control):
    return control.get("/calls", params={"page_id": PAGE_ID}).json()["calls"][-1]


def test_send_inside_the_window_reaches_the_thread(graph, creds, customer, control):
    result = graph.send(creds, builders.text_message(customer["psid"], "Your balance is €1,204.50"))

    assert result.recipient_id == customer["psid"]
    thread = control.get(f"/pages/{PAGE_ID}/users/{customer['psid']}/thread").json()
    assert thread["messages"][-1]["body"] == {"text": "Your balance is €1,204.50"}
    assert thread["messages"][-1]["mid"] == result.message_id


def test_every_call_is_recorded_with_its_proof(graph, creds, customer, control):
    graph.send(creds, builders.text_message(customer["psid"], "hello"))

    call = last_call(control)
    assert (call["method"], call["path"], call["status"]) == (
        "POST",
        f"/v27.0/{PAGE_ID}/messages",
        200,
    )
    assert call["query"] == {"appsecret_proof": creds.appsecret_proof}
    assert call["body"]["message"] == {"text": "hello"}


def test_the_page_token_never_travels_in_a_url(graph, creds, customer, control):
    graph.send(creds, builders.text_message(customer["psid"], "hello"))  # the fast path
    graph.sender_action(creds, customer["psid"], "typing_on")
    graph.page_check(creds)
    graph.subscribed_apps_get(creds)

    calls = control.get("/calls", params={"page_id": PAGE_ID}).json()["calls"]
    assert len(calls) >= 4
    for call in calls:
        assert call["status"] == 200, call
        assert "access_token" not in call["query"]
        assert TOKEN not in json.dumps(call)


def test_the_token_as_a_parameter_is_still_accepted_as_meta_accepts_it(live, creds, sandbox_page):
    response = httpx.get(
        f"{live.url}/sandbox/graph/v27.0/{PAGE_ID}",
        params={"access_token": TOKEN, "appsecret_proof": creds.appsecret_proof},
    )

    assert response.status_code == 200
    assert response.json()["id"] == PAGE_ID


def test_a_wrong_token_is_a_bad_token_error(graph, customer):
    wrong = PageCredentials(page_id=PAGE_ID, access_token="EAAexpired", app_secret=SECRET)

    with pytest.raises(BadTokenError) as caught:
        graph.send(wrong, builders.text_message(customer["psid"], "hello"))
    assert caught.value.code == 190


def test_a_wrong_app_secret_is_a_configuration_error(graph, customer):
    wrong = PageCredentials(page_id=PAGE_ID, access_token=TOKEN, app_secret="not-the-secret")

    with pytest.raises(ConfigError) as caught:
        graph.page_check(wrong)
    assert caught.value.code == 100
    assert "app secret" in caught.value.user_message


def test_an_unknown_person_is_unavailable(graph, creds, sandbox_page):
    with pytest.raises(PersonUnavailableError) as caught:
        graph.send(creds, builders.text_message("9999999999999999", "hello"))
    assert (caught.value.code, caught.value.subcode) == (551, 1545041)


def test_free_form_outside_the_24_hour_window_is_refused(graph, creds, customer, control):
    control.post(f"/pages/{PAGE_ID}/users/{customer['psid']}/age", json={"hours": 25})

    with pytest.raises(OutsideWindowError) as caught:
        graph.send(creds, builders.text_message(customer["psid"], "late", messaging_type="UPDATE"))
    assert (caught.value.code, caught.value.subcode) == (10, 2018278)


def test_human_agent_tag_works_for_seven_days_only(graph, creds, customer, control):
    psid = customer["psid"]
    control.post(f"/pages/{PAGE_ID}/users/{psid}/age", json={"hours": 48})
    graph.send(creds, builders.human_agent_message(psid, "Ana from the card team here."))

    control.post(f"/pages/{PAGE_ID}/users/{psid}/age", json={"hours": 24 * 6})
    with pytest.raises(OutsideWindowError):
        graph.send(creds, builders.human_agent_message(psid, "A week later"))


@pytest.mark.parametrize("tag", ["ACCOUNT_UPDATE", "POST_PURCHASE_UPDATE", "PAYMENT_UPDATE"])
def test_retired_tags_are_refused_with_code_100(graph, creds, customer, tag):
    payload = {
        "recipient": {"id": customer["psid"]},
        "messaging_type": "MESSAGE_TAG",
        "tag": tag,
        "message": {"text": "Card payment of €20.00"},
    }

    with pytest.raises(BadRequestError) as caught:
        graph.send(creds, payload)
    assert caught.value.code == 100
    assert "utility template" in caught.value.user_message


def test_the_per_page_rate_limit_throttles_with_the_usage_header(graph, creds, customer, control):
    control.post(
        "/pages",
        json={
            "page_id": PAGE_ID,
            "name": "Harbour Bank",
            "access_token": TOKEN,
            "app_secret": SECRET,
            "rate_limit_per_second": 3,
        },
    )
    psid = customer["psid"]

    with pytest.raises(ThrottledError) as caught:
        for n in range(10):
            graph.send(creds, builders.text_message(psid, f"update {n}"))
    assert (caught.value.code, caught.value.subcode) == (613, 2534040)
    call = last_call(control)
    assert call["error_code"] == 613


def test_injected_throttling_carries_the_wait(graph, creds, customer, control):
    control.put(f"/pages/{PAGE_ID}/faults", json={"throttle": True, "throttle_minutes": 3})

    with pytest.raises(ThrottledError) as caught:
        graph.send(creds, builders.text_message(customer["psid"], "hello"))
    assert caught.value.retry_after_seconds == 180.0


def test_injected_errors_are_transient(graph, creds, customer, control):
    control.put(f"/pages/{PAGE_ID}/faults", json={"error_rate": 1.0, "seed": 7})

    with pytest.raises(TransientError) as caught:
        graph.send(creds, builders.text_message(customer["psid"], "hello"))
    assert caught.value.code in {1, 2}

    control.delete(f"/pages/{PAGE_ID}/faults")
    assert graph.send(creds, builders.text_message(customer["psid"], "hello")).message_id


def test_a_share_of_injected_errors_fails_about_that_share(graph, creds, customer, control):
    control.put(f"/pages/{PAGE_ID}/faults", json={"error_rate": 0.3, "seed": 42})
    failures = 0
    for n in range(40):
        try:
            graph.send(creds, builders.text_message(customer["psid"], f"n{n}"))
        except TransientError:
            failures += 1

    assert 4 <= failures <= 20


def test_injected_timeouts_surface_as_transient_maybe_processed(live, creds, customer, control):
    control.put(f"/pages/{PAGE_ID}/faults", json={"timeout_rate": 1.0, "timeout_seconds": 2})

    with (
        GraphClient(
            f"{live.url}/sandbox/graph", "v27.0", timeout_connect=0.5, timeout_total=0.5
        ) as impatient,
        pytest.raises(TransientError) as caught,
    ):
        impatient.send(creds, builders.text_message(customer["psid"], "hello"))
    assert caught.value.maybe_processed is True


def test_injected_latency_delays_the_answer(graph, creds, customer, control):
    control.put(f"/pages/{PAGE_ID}/faults", json={"latency_ms": 300})

    started = time.monotonic()
    graph.send(creds, builders.text_message(customer["psid"], "hello"))

    assert time.monotonic() - started >= 0.3


def test_bad_fault_settings_are_refused(control, sandbox_page):
    response = control.put(f"/pages/{PAGE_ID}/faults", json={"error_rate": 2})

    assert response.status_code == 400
    assert "error_rate" in response.json()["error"]


def test_a_bad_linking_token_is_a_linking_token_error(graph, creds, sandbox_page):
    with pytest.raises(LinkingTokenError) as caught:
        graph.psid_for_linking_token(creds, "not-a-real-token")
    assert caught.value.code == 10303


def test_a_live_linking_token_gives_the_psid_of_the_person_who_tapped_log_in(
    graph, creds, customer, control
):
    tapped = control.post(
        f"/pages/{PAGE_ID}/users/{customer['psid']}/link",
        json={"url": "https://bank.example/link"},
    ).json()

    assert graph.psid_for_linking_token(creds, tapped["account_linking_token"]) == customer["psid"]


def test_the_profile_of_a_person_who_wrote_gives_their_name(graph, creds, customer):
    profile = graph.user_profile(creds, customer["psid"])

    assert (profile.first_name, profile.last_name) == ("Ana", "Souza")


def test_the_profile_of_a_person_who_never_opened_the_conversation_is_refused(
    graph, creds, control, sandbox_page
):
    silent = control.post(f"/pages/{PAGE_ID}/users", json={"name": "Ben Carter"}).json()

    with pytest.raises(MessengerError):
        graph.user_profile(creds, silent["psid"])


def test_an_app_without_profile_access_reads_no_name(graph, creds, customer, control):
    assert control.put(f"/pages/{PAGE_ID}/faults", json={"profile_denied": True}).is_success

    with pytest.raises(MessengerError) as refused:
        graph.user_profile(creds, customer["psid"])

    assert refused.value.code == 200


def test_page_check_names_the_page(graph, creds, sandbox_page):
    info = graph.page_check(creds)

    assert (info.id, info.name) == (PAGE_ID, "Harbour Bank")


def test_utility_templates_are_reviewed_then_sendable_outside_the_window(
    graph, creds, customer, control
):
    psid = customer["psid"]
    created = graph.message_template_create(
        creds,
        name="card_alert",
        language="en",
        body_text="Card payment of {{1}} at {{2}}.",
        example_params=["€12.00", "Bakery"],
    )
    assert created.status == "PENDING"
    control.post(f"/pages/{PAGE_ID}/users/{psid}/age", json={"hours": 30})
    message = builders.utility_template_message(psid, "card_alert", "en", ["€120.00", "Grocer"])

    with pytest.raises(BadRequestError):
        graph.send(creds, message)  # not approved yet
    time.sleep(1.1)
    assert graph.message_template_status(creds, "card_alert").status == "APPROVED"
    assert graph.send(creds, message).message_id


def test_marketing_templates_are_rejected(graph, creds, sandbox_page):
    graph.message_template_create(
        creds,
        name="promo",
        language="en",
        body_text="Big sale: 20% off with {{1}}",
        example_params=["card"],
    )
    time.sleep(1.1)

    info = graph.message_template_status(creds, "promo")
    assert (info.status, info.rejected_reason) == ("REJECTED", "PROMOTIONAL")


def test_subscribed_apps_round_trip(graph, creds, sandbox_page):
    graph.subscribed_apps_set(creds, ["messages", "messaging_account_linking"])

    [app] = graph.subscribed_apps_get(creds)
    assert set(app.subscribed_fields) == {"messages", "messaging_account_linking"}


def test_a_subscription_replaces_the_fields_before_it(graph, creds, sandbox_page):
    graph.subscribed_apps_set(creds, ["messages", "message_reads"])
    graph.subscribed_apps_set(creds, ["messages", "message_reactions", "messaging_referrals"])

    [app] = graph.subscribed_apps_get(creds)
    assert app.subscribed_fields == ("messages", "message_reactions", "messaging_referrals")


@pytest.mark.parametrize(
    "fields",
    [
        ["messages", "message_reaction"],
        ["messages", "messenger_template_status_update_x"],
        ["messages", "message_opens"],
    ],
)
def test_an_unknown_field_name_is_refused_and_changes_nothing(
    graph, creds, sandbox_page, control, fields
):
    graph.subscribed_apps_set(creds, ["messages"])

    with pytest.raises(BadRequestError) as refused:
        graph.subscribed_apps_set(creds, fields)

    assert refused.value.code == 100
    assert f'got "{fields[1]}"' in str(refused.value)
    [app] = graph.subscribed_apps_get(creds)
    assert app.subscribed_fields == ("messages",)
    call = last_call(control)
    assert (call["method"], call["error_code"]) == ("GET", None)


def test_an_empty_subscription_is_refused(live, creds, sandbox_page):
    response = httpx.post(
        f"{live.url}/sandbox/graph/v27.0/{PAGE_ID}/subscribed_apps",
        params={"subscribed_fields": "", "appsecret_proof": creds.appsecret_proof},
        headers={"Authorization": f"Bearer {TOKEN}"},
    )

    assert response.status_code == 400
    assert response.json()["error"]["code"] == 100


def test_an_unsubscribed_app_is_not_listed(live, graph, creds, sandbox_page):
    graph.subscribed_apps_set(creds, ["messages"])
    response = httpx.delete(
        f"{live.url}/sandbox/graph/v27.0/{PAGE_ID}/subscribed_apps",
        params={"appsecret_proof": creds.appsecret_proof},
        headers={"Authorization": f"Bearer {TOKEN}"},
    )

    assert response.json() == {"success": True}
    assert graph.subscribed_apps_get(creds) == []


@pytest.mark.parametrize(
    ("params", "headers"),
    [
        ({"ids": f"{PAGE_ID},1029384757"}, {}),
        ({"fields": "id,name.as(title)"}, {}),
        ({"method": "delete"}, {}),
        ({"callback": "cb"}, {}),
        ({}, {"X-HTTP-Method-Override": "DELETE"}),
    ],
    ids=["multi-id", "field-alias", "method-override", "jsonp", "method-override-header"],
)
def test_from_v27_what_meta_removed_for_new_apps_is_refused(
    live, creds, sandbox_page, params, headers
):
    def get(version):
        return httpx.get(
            f"{live.url}/sandbox/graph/{version}/{PAGE_ID}",
            params={**params, "appsecret_proof": creds.appsecret_proof},
            headers={"Authorization": f"Bearer {TOKEN}", **headers},
        )

    assert get("v26.0").status_code == 200
    refused = get("v27.0")
    assert refused.status_code == 400
    assert "v27.0" in refused.json()["error"]["message"]


def test_sender_actions_are_accepted(graph, creds, customer):
    graph.sender_action(creds, customer["psid"], "typing_on")
    graph.sender_action(creds, customer["psid"], "mark_seen")


def test_bank_side_unlink_succeeds_for_a_known_person(graph, creds, customer):
    graph.unlink_account(creds, customer["psid"])

    with pytest.raises(PersonUnavailableError):
        graph.unlink_account(creds, "1234")


def test_going_live_subscribes_the_page_in_the_sandbox_and_a_check_renews_it(
    graph, creds, control, sandbox_page
):
    """The portal against the sandbox over HTTP: every field it subscribes is one Meta takes."""
    from portal import services
    from portal.audit import Actor
    from portal.models import MessengerIntegration
    from portal.tests.factories import BankFactory, integration_for

    integration = integration_for(
        BankFactory(), page_id=PAGE_ID, page_access_token=TOKEN, app_secret=SECRET
    )
    ada = Actor("staff", "1", "ada")
    services.integration_check(actor=ada, integration=integration, client=graph)
    services.integration_go_live(actor=ada, integration=integration, client=graph)
    control.delete("/calls")
    # Meta unsubscribed the app after an hour of failing webhooks.
    response = httpx.delete(
        f"{graph.base_url}/v27.0/{PAGE_ID}/subscribed_apps",
        params={"appsecret_proof": creds.appsecret_proof},
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    assert response.json() == {"success": True}

    check = services.integration_check(actor=ada, integration=integration, client=graph)

    assert check.ok
    [app] = graph.subscribed_apps_get(creds)
    assert app.subscribed_fields == services.SUBSCRIBED_FIELDS
    stored = MessengerIntegration.objects.get(pk=integration.pk)
    assert (stored.status, tuple(stored.subscribed_fields)) == ("live", services.SUBSCRIBED_FIELDS)
    posts = [c for c in control.get("/calls").json()["calls"] if c["method"] == "POST"]
    assert [c["path"] for c in posts] == [
        f"/v27.0/{PAGE_ID}/subscribed_apps",
        "/v27.0/me/messenger_profile",  # the persistent menu, set again with it
    ]
