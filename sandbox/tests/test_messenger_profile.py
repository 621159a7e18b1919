"""The Messenger Profile API as the sandbox keeps it, driven by the messenger/ client and by
plain HTTP: the persistent menu needs Get Started, is checked as Meta checks it, and reads
back as it was set; and bankside's own menu (*Manage sharing*) goes through."""

import httpx
import pytest

from messenger import BadRequestError, builders
from portal.services.integration import messenger_profile_for
from portal.tests.factories import BankFactory
from sandbox.models import Page
from sandbox.tests.conftest import PAGE_ID, TOKEN

pytestmark = pytest.mark.django_db(transaction=True)

MENU = builders.persistent_menu(
    {"default": [{"type": "postback", "title": "Manage sharing", "payload": "MANAGE_SHARING"}]}
)


def profile_call(live, creds, method, **kwargs):
    return httpx.request(
        method,
        f"{live.url}/sandbox/graph/v27.0/me/messenger_profile",
        params={"appsecret_proof": creds.appsecret_proof, **kwargs.pop("params", {})},
        headers={"Authorization": f"Bearer {TOKEN}"},
        **kwargs,
    )


def test_the_menu_is_set_with_get_started_and_reads_back(live, graph, creds, sandbox_page):
    graph.messenger_profile_set(
        creds, {"get_started": {"payload": "GET_STARTED"}, "persistent_menu": MENU}
    )

    read = profile_call(live, creds, "GET", params={"fields": "persistent_menu,get_started"})
    (profile,) = read.json()["data"]
    assert profile["get_started"] == {"payload": "GET_STARTED"}
    assert profile["persistent_menu"][0]["call_to_actions"] == [
        {"type": "postback", "title": "Manage sharing", "payload": "MANAGE_SHARING"}
    ]


def test_a_menu_without_get_started_is_refused_as_meta_refuses_it(graph, creds, sandbox_page):
    with pytest.raises(BadRequestError) as refused:
        graph.messenger_profile_set(creds, {"persistent_menu": MENU})

    assert refused.value.code == 100 and "Get Started" in str(refused.value)
    assert Page.objects.get(page_id=PAGE_ID).messenger_profile == {}


@pytest.mark.parametrize(
    "menu",
    [
        [
            {
                "locale": "fr_FR",
                "call_to_actions": [{"type": "postback", "title": "x", "payload": "y"}],
            }
        ],
        [{"locale": "default", "call_to_actions": []}],
        [
            {
                "locale": "default",
                "call_to_actions": [{"type": "postback", "title": "x" * 31, "payload": "y"}],
            }
        ],
        [
            {
                "locale": "default",
                "call_to_actions": [{"type": "call", "title": "x", "payload": "y"}],
            }
        ],
    ],
    ids=["no default locale", "no items", "title too long", "unknown button type"],
)
def test_a_malformed_menu_is_refused_and_changes_nothing(live, creds, sandbox_page, menu):
    response = profile_call(
        live,
        creds,
        "POST",
        json={"get_started": {"payload": "GET_STARTED"}, "persistent_menu": menu},
    )

    assert response.status_code == 400 and response.json()["error"]["code"] == 100
    assert Page.objects.get(page_id=PAGE_ID).messenger_profile == {}


def test_bankside_menu_is_accepted_in_every_language(graph, creds, sandbox_page):
    bank = BankFactory(default_locale="fr")
    profile = messenger_profile_for(bank)

    graph.messenger_profile_set(creds, profile)

    stored = Page.objects.get(page_id=PAGE_ID).messenger_profile
    titles = {m["locale"]: m["call_to_actions"][0]["title"] for m in stored["persistent_menu"]}
    assert titles["default"] == titles["fr_FR"] == "Gérer le partage"
    assert titles["en_US"] == "Manage sharing"
    assert {m["call_to_actions"][0]["payload"] for m in stored["persistent_menu"]} == {
        "MANAGE_SHARING"
    }
