"""The chat's persistent menu (*Manage sharing*) is set through the Messenger Profile API
when the integration goes live and at each check of a live one; a refusal is audited and
does not stop the integration. The Graph API is faked at the client boundary."""

import json

import httpx
import pytest

from messenger import GraphClient
from portal.audit import Actor
from portal.models import AuditEvent, MessengerIntegration
from portal.services import integration_check, integration_go_live
from portal.tests.factories import BankFactory, integration_for

pytestmark = pytest.mark.django_db
ADA = Actor("staff", "1", "ada")


class Graph:
    def __init__(self, profile_answer=None) -> None:
        self.profiles: list[dict] = []
        self.profile_answer = profile_answer or (200, {"result": "success"})
        self.client = GraphClient(
            "https://graph.example", "v27.0", transport=httpx.MockTransport(self.answer)
        )

    def answer(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/me/messenger_profile"):
            self.profiles.append(json.loads(request.content))
            status, body = self.profile_answer
            return httpx.Response(status, json=body)
        if request.url.path.endswith("/subscribed_apps"):
            return httpx.Response(200, json={"success": True})
        return httpx.Response(200, json={"id": "1234567890", "name": "Harbour Help"})


@pytest.fixture
def integration():
    return integration_for(BankFactory(default_locale="de"))


def test_going_live_sets_get_started_and_manage_sharing_in_every_language(integration):
    graph = Graph()
    integration_check(actor=ADA, integration=integration, client=graph.client)
    assert graph.profiles == []  # not live yet: nothing set

    integration_go_live(actor=ADA, integration=integration, client=graph.client)

    (profile,) = graph.profiles
    assert profile["get_started"] == {"payload": "GET_STARTED"}
    menus = {m["locale"]: m["call_to_actions"] for m in profile["persistent_menu"]}
    assert set(menus) == {"default", "en_US", "fr_FR", "de_DE", "es_ES"}
    assert menus["default"] == [
        {"type": "postback", "title": "Freigabe verwalten", "payload": "MANAGE_SHARING"}
    ]
    assert menus["en_US"][0]["title"] == "Manage sharing"
    assert all(len(items[0]["title"]) <= 30 for items in menus.values())
    (entry,) = AuditEvent.objects.filter(action="integration.menu_set")
    assert "fr_FR" in entry.details["locales"]


def test_each_check_of_a_live_integration_sets_the_menu_again(integration):
    graph = Graph()
    integration_check(actor=ADA, integration=integration, client=graph.client)
    integration_go_live(actor=ADA, integration=integration, client=graph.client)

    integration_check(actor=ADA, integration=integration, client=graph.client)

    assert len(graph.profiles) == 2


def test_a_refused_menu_is_audited_and_the_integration_still_goes_live(integration):
    graph = Graph(profile_answer=(400, {"error": {"code": 100, "message": "Invalid menu"}}))
    integration_check(actor=ADA, integration=integration, client=graph.client)

    integration_go_live(actor=ADA, integration=integration, client=graph.client)

    assert MessengerIntegration.objects.get(pk=integration.pk).status == "live"
    (entry,) = AuditEvent.objects.filter(action="integration.menu_failed")
    assert entry.details["code"] == 100
