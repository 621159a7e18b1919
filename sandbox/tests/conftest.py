import time

import httpx
import pytest

from messenger import GraphClient, PageCredentials
from sandbox.tests import bank_stub

PAGE_ID = "1029384756"
TOKEN = "EAAsandbox-page-token"
SECRET = "sandbox-app-secret-0123456789"


@pytest.fixture
def live(live_server, settings):
    """The live server with the test bank's stub pages mounted beside the real URLs."""
    settings.ROOT_URLCONF = "sandbox.tests.urls"
    bank_stub.reset()
    return live_server


@pytest.fixture
def control(live):
    with httpx.Client(base_url=f"{live.url}/sandbox/api", timeout=10) as client:
        yield client


@pytest.fixture
def sandbox_page(live, control):
    response = control.post(
        "/pages",
        json={
            "page_id": PAGE_ID,
            "name": "Harbour Bank",
            "access_token": TOKEN,
            "app_secret": SECRET,
            "webhook_url": f"{live.url}/test-bank/webhook",
            "verify_token": "verify-me",
        },
    )
    assert response.status_code == 201, response.text
    return response.json()


@pytest.fixture
def creds():
    return PageCredentials(page_id=PAGE_ID, access_token=TOKEN, app_secret=SECRET)


@pytest.fixture
def graph(live):
    with GraphClient(f"{live.url}/sandbox/graph", "v27.0", timeout_total=10) as client:
        yield client


@pytest.fixture
def customer(control, sandbox_page):
    """A Messenger user who has just written to the Page (the 24-hour window is open)."""
    user = control.post(f"/pages/{PAGE_ID}/users", json={"name": "Ana Souza"}).json()
    control.post(f"/pages/{PAGE_ID}/users/{user['psid']}/messages", json={"text": "hi"})
    return user


def wait_for(predicate, timeout=10.0, interval=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return predicate()
