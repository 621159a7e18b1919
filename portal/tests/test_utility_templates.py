import json

import httpx
import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from messenger import GraphClient
from portal import selectors, services
from portal.events import EventType
from portal.models import AuditEvent, MessageTemplate, StaffMembership, UtilityTemplate
from portal.tests.factories import (
    SEED,
    StaffMembershipFactory,
    integration_for,
    template_text_approved,
)
from portal.views import templates as template_views

pytestmark = pytest.mark.django_db

TXN = EventType.TRANSACTION_POSTED
PAGE_ID = "1234567890"


class FakeGraph:
    """The Graph API answering template calls; remembers what it was sent."""

    def __init__(self, *, create=None, status=None):
        self.requests: list[httpx.Request] = []
        self.create = create or (
            lambda r: httpx.Response(200, json={"id": "777", "status": "PENDING"})
        )
        self.status = status or (
            lambda r: httpx.Response(
                200,
                json={"id": "777", "name": "harbour_transaction_posted_v1", "status": "APPROVED"},
            )
        )

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.url.path.endswith("/message_templates"):
            return self.create(request)
        return self.status(request)

    def client(self) -> GraphClient:
        return GraphClient("https://graph.example", "v23.0", transport=httpx.MockTransport(self))


def refused(message="Template body contains promotional content", code=100):
    return lambda request: httpx.Response(
        400, json={"error": {"message": message, "code": code, "type": "OAuthException"}}
    )


@pytest.fixture
def bank():
    bank = services.bank_create(actor=SEED, name="Harbour Bank", slug="harbour")
    integration_for(bank, page_id=PAGE_ID)
    return bank


@pytest.fixture
def template(bank):
    return template_text_approved(
        bank,
        event_type=TXN,
        locale="en",
        body="Hi {customer_first_name}: {amount} at {merchant} ({description}). {amount} again.",
    )


def test_registering_sends_numbered_placeholders_with_masked_examples(template):
    graph = FakeGraph()

    outcome = services.utility_template_register(
        actor=SEED, template=template, client=graph.client()
    )

    sent = json.loads(graph.requests[0].content)
    assert graph.requests[0].url.path == f"/v23.0/{PAGE_ID}/message_templates"
    assert "appsecret_proof" in graph.requests[0].url.params
    assert sent == {
        "name": "harbour_transaction_posted_v1",
        "language": "en",
        "category": "UTILITY",
        "components": [
            {
                "type": "BODY",
                "text": "Hi {{1}}: {{2}} at {{3}} ({{4}}). {{2}} again.",
                "example": {
                    "body_text": [
                        [
                            "Ana",
                            "-€42.50",
                            "Café Lumière",
                            "Contactless payment, card •••• 4821",
                        ]
                    ]
                },
            }
        ],
    }
    utility = outcome.utility_template
    assert outcome.ok and utility.platform_template_id == "777"
    assert utility.param_names == ["customer_first_name", "amount", "merchant", "description"]
    assert utility.status == UtilityTemplate.Status.PENDING
    assert AuditEvent.objects.filter(action="utility_template.submitted").count() == 1


def test_registering_again_takes_the_next_version(template):
    graph = FakeGraph()
    services.utility_template_register(actor=SEED, template=template, client=graph.client())

    second = services.utility_template_register(
        actor=SEED, template=template, client=graph.client()
    ).utility_template

    assert second.name == "harbour_transaction_posted_v2" and second.version == 2


def test_a_refusal_is_reported_with_its_user_message_and_audited(template):
    graph = FakeGraph(create=refused())

    outcome = services.utility_template_register(
        actor=SEED, template=template, client=graph.client()
    )

    assert not outcome.ok
    assert "rejected the message as invalid" in outcome.error
    assert not UtilityTemplate.objects.exists()
    entry = AuditEvent.objects.get(action="utility_template.registration_failed")
    assert entry.details["code"] == 100


def test_registering_needs_the_page_credentials():
    bank = services.bank_create(actor=SEED, name="New Bank", slug="new-bank")
    template = MessageTemplate.objects.filter(bank=bank).first()

    with pytest.raises(ValidationError, match="Page credentials"):
        services.utility_template_register(
            actor=SEED, template=template, client=FakeGraph().client()
        )


def test_refreshing_records_the_approval_and_audits_the_change(template):
    graph = FakeGraph()
    utility = services.utility_template_register(
        actor=SEED, template=template, client=graph.client()
    ).utility_template

    outcome = services.utility_template_refresh(
        actor=SEED, utility_template=utility, client=graph.client()
    )

    assert graph.requests[-1].url.path == "/v23.0/777"
    assert outcome.utility_template.status == UtilityTemplate.Status.APPROVED
    assert selectors.utility_template_for(template=template) == outcome.utility_template
    entry = AuditEvent.objects.get(action="utility_template.status_changed")
    assert entry.details["status"] == ["PENDING", "APPROVED"]


def test_a_rejection_keeps_its_reason(template):
    graph = FakeGraph(
        status=lambda r: httpx.Response(
            200, json={"id": "777", "status": "REJECTED", "rejected_reason": "PROMOTIONAL"}
        )
    )
    utility = services.utility_template_register(
        actor=SEED, template=template, client=graph.client()
    ).utility_template

    refreshed = services.utility_template_refresh(
        actor=SEED, utility_template=utility, client=graph.client()
    ).utility_template

    assert (refreshed.status, refreshed.rejected_reason) == ("REJECTED", "PROMOTIONAL")
    assert selectors.utility_template_for(template=template) is None


def test_a_status_webhook_for_an_unknown_template_is_ignored(bank):
    assert (
        services.utility_template_status_record(
            actor=SEED, bank=bank, platform_template_id="999", status="APPROVED"
        )
        is None
    )


def test_an_edited_text_marks_the_registration_outdated(template):
    utility = services.utility_template_register(
        actor=SEED, template=template, client=FakeGraph().client()
    ).utility_template

    template_text_approved(template.bank, event_type=TXN, locale="en", body="Only {amount}.")

    utility.refresh_from_db()
    assert not utility.is_current


# The staff pages


@pytest.fixture
def operator(bank, sign_in):
    member = StaffMembershipFactory(bank=bank, role=StaffMembership.Role.OPERATOR)
    return sign_in(member.user)


def edit_url(template):
    return reverse(
        "portal:message_template_edit", kwargs={"bank": "harbour", "template": template.pk}
    )


def test_an_operator_registers_a_template_and_sees_its_status(operator, template, monkeypatch):
    graph = FakeGraph()
    monkeypatch.setattr(template_views, "graph_client", graph.client)
    register = reverse(
        "portal:utility_template_register", kwargs={"bank": "harbour", "template": template.pk}
    )

    page = operator.post(register, follow=True).content.decode()

    assert "Submitted to Meta as “harbour_transaction_posted_v1”: pending review." in page
    assert 'id="utility-status">Pending review<' in page
    assert "<code>{{2}}</code> = <code>{amount}</code>" in page

    refresh = reverse(
        "portal:utility_template_refresh", kwargs={"bank": "harbour", "template": template.pk}
    )
    page = operator.post(refresh, follow=True).content.decode()
    assert "Meta&#x27;s review status: Approved." in page


def test_the_page_shows_metas_user_message_when_registration_fails(operator, template, monkeypatch):
    graph = FakeGraph(create=refused(code=190, message="Error validating access token"))
    monkeypatch.setattr(template_views, "graph_client", graph.client)
    register = reverse(
        "portal:utility_template_register", kwargs={"bank": "harbour", "template": template.pk}
    )

    page = operator.post(register, follow=True).content.decode()

    assert "Meta did not accept the template: The Facebook Page access token is invalid" in page
    assert "Not registered with Meta yet." in page


def test_refreshing_an_unregistered_template_says_so(operator, template):
    refresh = reverse(
        "portal:utility_template_refresh", kwargs={"bank": "harbour", "template": template.pk}
    )

    page = operator.post(refresh, follow=True).content.decode()

    assert "not registered with Meta yet" in page
