"""The whole Log In flow over real HTTP: sandbox user, portal pages, webhook, worker."""

import re
import time
from datetime import timedelta

import httpx
import pytest

from linking import services, views
from linking.models import Consent
from portal.audit import Actor

pytestmark = pytest.mark.django_db(transaction=True)

ACCOUNT_VALUE = re.compile(r'name="accounts" value="(\d+)"')


def wait_for(predicate, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    return predicate()


def sandbox(live_server, path, method="GET", **kwargs):
    response = httpx.request(method, f"{live_server.url}/sandbox/api{path}", timeout=10, **kwargs)
    assert response.status_code < 400, response.text
    return response.json()


def start_linking(live_server, integration):
    """A Messenger user writes to the Page, then taps Log In: answers (psid, bank URL)."""
    page = integration.page_id
    user = sandbox(live_server, f"/pages/{page}/users", "POST", json={"name": "Ana in Messenger"})
    sandbox(
        live_server, f"/pages/{page}/users/{user['psid']}/messages", "POST", json={"text": "hello"}
    )
    started = sandbox(
        live_server,
        f"/pages/{page}/users/{user['psid']}/link",
        "POST",
        json={"url": f"{live_server.url}/link/harbour/"},
    )
    return user["psid"], started["location"]


def log_in(browser_http, location):
    login_page = browser_http.get(location)
    assert "Log in to Harbour Bank" in login_page.text
    consent_page = browser_http.submit(
        login_page, {"username": "ana", "password": "open sesame 42"}
    )
    assert "Link Harbour Bank to Messenger?" in consent_page.text
    return consent_page


def thread_texts(live_server, integration, psid):
    thread = sandbox(live_server, f"/pages/{integration.page_id}/users/{psid}/thread")
    return [
        m["body"].get("text") or m["body"].get("attachment", {}).get("payload", {}).get("text", "")
        for m in thread["messages"]
        if m["direction"] == "out"
    ]


def link(live_server, harbour, browser_http):
    _, integration, _ = harbour
    psid, location = start_linking(live_server, integration)
    consent_page = log_in(browser_http, location)
    first_account = ACCOUNT_VALUE.findall(consent_page.text)[0]
    done = browser_http.submit(
        consent_page,
        {"accounts": [first_account], "scopes": ["balances", "fraud_alerts"], "decision": "allow"},
    )
    assert "Account linked" in done.text
    consent = wait_for(lambda: Consent.objects.filter(psid=psid, status="authorised").first())
    assert consent is not None, "the linked webhook never bound the PSID"
    return psid, consent


def test_allow_links_the_person_and_confirms_in_messenger(
    live_server, harbour, browser_http, worker
):
    _, integration, customer = harbour

    psid, consent = link(live_server, harbour, browser_http)

    assert consent.customer == customer and consent.page_id == integration.page_id
    assert consent.scopes == ["balances", "fraud_alerts"]
    assert [a.external_id for a in consent.accounts.all()] == ["chk"]
    confirmation = wait_for(
        lambda: [t for t in thread_texts(live_server, integration, psid) if "linked" in t]
    )
    assert confirmation and "Everyday account •••• 4821" in confirmation[0]
    assert "advertising" in confirmation[0]


def test_deny_redirects_without_a_code_and_records_the_refusal(live_server, harbour, browser_http):
    _, integration, _ = harbour
    psid, location = start_linking(live_server, integration)
    consent_page = log_in(browser_http, location)

    done = browser_http.submit(consent_page, {"decision": "deny"})

    assert "Linking cancelled" in done.text
    assert "authorization_code" not in str(done.url)
    assert Consent.objects.get().status == Consent.Status.REJECTED
    users = sandbox(live_server, f"/pages/{integration.page_id}/users")["users"]
    assert [u["linked"] for u in users if u["psid"] == psid] == [False]


def test_an_expired_linking_token_asks_to_restart_from_messenger(
    live_server, harbour, browser_http, monkeypatch
):
    _, integration, _ = harbour
    _, location = start_linking(live_server, integration)
    consent_page = log_in(browser_http, location)
    monkeypatch.setattr(views, "LINKING_TOKEN_LIFETIME", timedelta(0))

    expired = browser_http.submit(consent_page, {"decision": "allow"})

    assert expired.status_code == 410
    assert "tap Log In again" in expired.text
    assert not Consent.objects.exists()


def test_an_untrusted_redirect_uri_is_an_error_page_never_a_redirect(live_server, harbour):
    response = httpx.get(
        f"{live_server.url}/link/harbour/",
        params={"account_linking_token": "t", "redirect_uri": "https://evil.example/steal"},
        timeout=10,
    )

    assert response.status_code == 400
    assert "evil.example" not in response.headers.get("location", "")
    assert "did not come from Messenger" in response.text


def test_unlink_from_the_customer_dashboard_tells_messenger(
    live_server, harbour, browser_http, worker
):
    _, integration, _ = harbour
    psid, consent = link(live_server, harbour, browser_http)
    dashboard = browser_http.get(f"{live_server.url}/my/harbour/")
    assert "Everyday account •••• 4821" in dashboard.text

    stop = browser_http.get(f"{live_server.url}/my/harbour/consents/{consent.pk}/stop")
    after = browser_http.submit(
        stop,
        {"confirm": "stop"},
        action=f"{live_server.url}/my/harbour/consents/{consent.pk}/revoke",
    )

    assert "You have stopped sharing" in after.text
    consent.refresh_from_db()
    assert consent.status == Consent.Status.REVOKED
    assert consent.events.last().actor == "customer"
    assert wait_for(lambda: Consent.objects.get(pk=consent.pk).platform_unlinked_at)
    calls = sandbox(live_server, "/calls", params={"page_id": integration.page_id})["calls"]
    assert [c["body"] for c in calls if c["path"].endswith("/me/unlink_accounts")] == [
        {"psid": psid}
    ]


def test_unlink_in_messenger_revokes_without_calling_back(
    live_server, harbour, browser_http, worker
):
    _, integration, _ = harbour
    psid, consent = link(live_server, harbour, browser_http)

    sandbox(live_server, f"/pages/{integration.page_id}/users/{psid}/logout", "POST")

    revoked = wait_for(lambda: Consent.objects.get(pk=consent.pk).status == "revoked")
    assert revoked
    consent.refresh_from_db()
    assert consent.events.last().actor == "platform"
    assert consent.platform_unlinked_at is not None
    calls = sandbox(live_server, "/calls", params={"page_id": integration.page_id})["calls"]
    assert not [c for c in calls if c["path"].endswith("/me/unlink_accounts")]


def test_unlink_by_bank_staff_tells_messenger(live_server, harbour, browser_http, worker):
    _, integration, _ = harbour
    psid, consent = link(live_server, harbour, browser_http)

    services.consent_revoke(
        consent=consent, actor=Actor("staff", "3", "olga"), reason="Customer asked by phone"
    )

    assert wait_for(lambda: Consent.objects.get(pk=consent.pk).platform_unlinked_at)
    users = sandbox(live_server, f"/pages/{integration.page_id}/users")["users"]
    assert [u["linked"] for u in users if u["psid"] == psid] == [False]
    assert wait_for(
        lambda: [t for t in thread_texts(live_server, integration, psid) if "stopped" in t]
    )


def test_a_customer_of_another_bank_sees_nothing_here(live_server, harbour, browser_http):
    from linking.tests.factories import CustomerFactory

    _, consent = link(live_server, harbour, browser_http)
    other = CustomerFactory(directory_username="mallory")
    login = browser_http.get(f"{live_server.url}/my/{other.bank.slug}/")
    browser_http.submit(login, {"username": "mallory", "password": "open sesame 42"})

    dashboard = browser_http.get(f"{live_server.url}/my/{other.bank.slug}/")
    assert "Everyday account" not in dashboard.text
    forged = browser_http.http.post(
        f"{live_server.url}/my/{other.bank.slug}/consents/{consent.pk}/revoke",
        data={"csrfmiddlewaretoken": browser_http.http.cookies.get("csrftoken")},
    )
    assert forged.status_code == 404
    assert Consent.objects.get(pk=consent.pk).status == "authorised"
