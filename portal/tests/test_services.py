import httpx
import pytest
from django.core.exceptions import ValidationError

from messenger import GraphClient
from portal.audit import Actor
from portal.models import AuditEvent, MessengerIntegration, StaffInvitation, StaffMembership
from portal.services import (
    bank_update,
    integration_check,
    integration_configure,
    integration_go_live,
    integration_pause,
    integration_resume,
    invitation_accept,
    invitation_revoke,
    staff_membership_revoke,
)
from portal.services.staff import InvitationInvalidError
from portal.tests.factories import (
    PASSWORD,
    BankFactory,
    StaffMembershipFactory,
    integration_for,
    invitation_for,
)

pytestmark = pytest.mark.django_db

ADA = Actor("staff", "1", "ada")
Status = MessengerIntegration.Status
Role = StaffMembership.Role


def client_answering(status, body) -> GraphClient:
    return GraphClient(
        "https://graph.example",
        "v27.0",
        transport=httpx.MockTransport(lambda request: httpx.Response(status, json=body)),
    )


class Graph:
    """The Graph API at the client boundary: the Page look-up and the webhook subscription."""

    def __init__(self, subscribe=None) -> None:
        self.requests: list[httpx.Request] = []
        self.subscribe = subscribe or (lambda request: httpx.Response(200, json={"success": True}))
        self.client = GraphClient(
            "https://graph.example", "v27.0", transport=httpx.MockTransport(self.answer)
        )

    def answer(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.url.path.endswith("/subscribed_apps"):
            return self.subscribe(request)
        return httpx.Response(200, json={"id": "1234567890", "name": "Harbour Help"})

    def subscriptions(self) -> list[list[str]]:
        return [
            r.url.params["subscribed_fields"].split(",")
            for r in self.requests
            if r.method == "POST" and r.url.path.endswith("/subscribed_apps")
        ]


PAGE_OK = Graph().client
TOKEN_BAD = client_answering(400, {"error": {"code": 190, "message": "expired"}})
ALL_FIELDS = [
    "messages",
    "messaging_postbacks",
    "messaging_referrals",
    "message_deliveries",
    "message_reads",
    "message_echoes",
    "message_reactions",
    "messaging_account_linking",
    "messaging_optins",
    "messaging_policy_enforcement",
    "standby",
    "message_template_status_update",
]


@pytest.fixture
def integration():
    return integration_for(BankFactory())


def test_a_draft_that_checks_out_becomes_verified(integration):
    result = integration_check(actor=ADA, integration=integration, client=PAGE_OK)

    assert result.ok and result.page_name == "Harbour Help"
    assert MessengerIntegration.objects.get(pk=integration.pk).status == Status.VERIFIED


def test_a_live_integration_stays_live_after_a_good_check(integration):
    integration_check(actor=ADA, integration=integration, client=PAGE_OK)
    integration_go_live(actor=ADA, integration=integration, client=PAGE_OK)

    integration_check(actor=ADA, integration=integration, client=PAGE_OK)

    assert MessengerIntegration.objects.get(pk=integration.pk).status == Status.LIVE


def test_a_bad_token_pauses_even_a_live_integration_and_resume_restores_it(integration):
    integration_check(actor=ADA, integration=integration, client=PAGE_OK)
    integration_go_live(actor=ADA, integration=integration, client=PAGE_OK)

    integration_check(actor=ADA, integration=integration, client=TOKEN_BAD)
    paused = MessengerIntegration.objects.get(pk=integration.pk)
    integration_resume(actor=ADA, integration=paused, client=PAGE_OK)

    assert (paused.status, paused.paused_from) == (Status.PAUSED, Status.LIVE)
    assert MessengerIntegration.objects.get(pk=integration.pk).status == Status.LIVE


def test_a_good_check_does_not_resume_a_paused_integration(integration):
    integration_pause(actor=ADA, integration=integration, reason="incident")

    integration_check(actor=ADA, integration=integration, client=PAGE_OK)

    assert MessengerIntegration.objects.get(pk=integration.pk).status == Status.PAUSED


def test_go_live_is_refused_from_draft(integration):
    with pytest.raises(ValidationError, match="Only a verified integration"):
        integration_go_live(actor=ADA, integration=integration, client=PAGE_OK)


def test_going_live_subscribes_the_page_to_every_field_the_product_uses(integration):
    graph = Graph()
    integration_check(actor=ADA, integration=integration, client=graph.client)

    integration_go_live(actor=ADA, integration=integration, client=graph.client)

    assert graph.subscriptions() == [ALL_FIELDS]
    (request,) = [r for r in graph.requests if r.url.path.endswith("/subscribed_apps")]
    assert request.url.path == f"/v27.0/{integration.page_id}/subscribed_apps"
    assert "appsecret_proof" in request.url.params
    live = MessengerIntegration.objects.get(pk=integration.pk)
    assert (live.status, live.subscribed_fields, live.subscribed_by) == (
        Status.LIVE,
        ALL_FIELDS,
        "ada",
    )
    assert live.subscribed_at is not None
    entry = AuditEvent.objects.get(action="integration.subscribed")
    assert (entry.actor_label, entry.details["fields"]) == ("ada", ALL_FIELDS)


def test_a_refused_subscription_keeps_the_integration_from_going_live(integration):
    refused = Graph(
        subscribe=lambda request: httpx.Response(
            400, json={"error": {"code": 200, "message": "(#200) pages_manage_metadata"}}
        )
    )
    integration_check(actor=ADA, integration=integration, client=refused.client)

    with pytest.raises(ValidationError, match="could not be subscribed to webhooks"):
        integration_go_live(actor=ADA, integration=integration, client=refused.client)

    stored = MessengerIntegration.objects.get(pk=integration.pk)
    assert (stored.status, stored.subscribed_at) == (Status.VERIFIED, None)
    entry = AuditEvent.objects.get(action="integration.subscription_failed")
    assert entry.details["code"] == 200


def test_a_check_of_a_live_integration_subscribes_the_page_again(integration):
    graph = Graph()
    integration_check(actor=ADA, integration=integration, client=graph.client)
    integration_go_live(actor=ADA, integration=integration, client=graph.client)
    other = Actor("staff", "2", "ben")

    result = integration_check(actor=other, integration=integration, client=graph.client)

    assert result.ok
    assert graph.subscriptions() == [ALL_FIELDS, ALL_FIELDS]
    assert MessengerIntegration.objects.get(pk=integration.pk).subscribed_by == "ben"
    actors = list(
        AuditEvent.objects.filter(action="integration.subscribed")
        .order_by("id")
        .values_list("actor_label", flat=True)
    )
    assert actors == ["ada", "ben"]


def test_a_check_before_going_live_subscribes_nothing(integration):
    graph = Graph()

    integration_check(actor=ADA, integration=integration, client=graph.client)

    assert graph.subscriptions() == []


def test_a_failed_re_subscription_is_reported_by_the_check(integration):
    calls = []

    def subscribe(request):
        calls.append(request)
        if len(calls) == 1:
            return httpx.Response(200, json={"success": True})
        return httpx.Response(500, json={"error": {"code": 2, "message": "try later"}})

    graph = Graph(subscribe=subscribe)
    integration_check(actor=ADA, integration=integration, client=graph.client)
    integration_go_live(actor=ADA, integration=integration, client=graph.client)

    result = integration_check(actor=ADA, integration=integration, client=graph.client)

    assert not result.ok and "subscribing it to webhooks failed" in result.error
    assert MessengerIntegration.objects.get(pk=integration.pk).status == Status.LIVE


def test_the_older_template_status_field_name_is_tried_when_meta_refuses_the_documented_one(
    integration,
):
    def subscribe(request):
        if "message_template_status_update" in request.url.params["subscribed_fields"]:
            return httpx.Response(
                400,
                json={
                    "error": {
                        "code": 100,
                        "message": "(#100) Param subscribed_fields[11] must be one of {…} - got "
                        '"message_template_status_update"',
                    }
                },
            )
        return httpx.Response(200, json={"success": True})

    graph = Graph(subscribe=subscribe)
    integration_check(actor=ADA, integration=integration, client=graph.client)

    integration_go_live(actor=ADA, integration=integration, client=graph.client)

    older = [*ALL_FIELDS[:-1], "messenger_template_status_update"]
    assert graph.subscriptions() == [ALL_FIELDS, older]
    assert MessengerIntegration.objects.get(pk=integration.pk).subscribed_fields == older


def test_resume_is_refused_unless_paused(integration):
    with pytest.raises(ValidationError, match="Only a paused integration"):
        integration_resume(actor=ADA, integration=integration, client=PAGE_OK)


def test_pausing_twice_is_refused(integration):
    integration_pause(actor=ADA, integration=integration)

    with pytest.raises(ValidationError, match="already paused"):
        integration_pause(actor=ADA, integration=integration)


def test_a_pause_without_a_reason_names_who_paused(integration):
    integration_pause(actor=ADA, integration=integration)

    assert MessengerIntegration.objects.get(pk=integration.pk).status_reason == "Paused by ada."


def test_a_check_is_audited_without_any_secret(integration):
    integration_check(actor=ADA, integration=integration, client=TOKEN_BAD)

    entry = AuditEvent.objects.get(action="integration.checked")
    assert entry.details["outcome"] == "failed" and entry.details["error"] == "BadTokenError"
    assert integration.page_access_token not in str(entry.details)


def test_changing_only_the_callback_url_keeps_the_status(integration):
    integration_check(actor=ADA, integration=integration, client=PAGE_OK)

    integration_configure(
        actor=ADA,
        bank=integration.bank,
        page_id=integration.page_id,
        callback_url="https://core.example/callback",
    )

    assert MessengerIntegration.objects.get(pk=integration.pk).status == Status.VERIFIED


def test_saving_unchanged_credentials_writes_no_audit_entry(integration):
    before = AuditEvent.objects.count()

    change = integration_configure(actor=ADA, bank=integration.bank, page_id=integration.page_id)

    assert AuditEvent.objects.count() == before
    assert change.signing_secret == ""


def test_the_last_admin_of_a_bank_cannot_be_removed():
    admin = StaffMembershipFactory(role=Role.ADMIN)

    with pytest.raises(ValidationError, match="only admin"):
        staff_membership_revoke(actor=ADA, membership=admin)

    assert StaffMembership.objects.filter(pk=admin.pk).exists()


def test_removing_staff_is_audited():
    admin = StaffMembershipFactory(role=Role.ADMIN)
    operator = StaffMembershipFactory(role=Role.OPERATOR, bank=admin.bank)

    staff_membership_revoke(actor=ADA, membership=operator)

    assert not StaffMembership.objects.filter(pk=operator.pk).exists()
    entry = AuditEvent.objects.get(action="staff.removed")
    assert entry.details == {"user": operator.user.username, "role": "operator"}


def test_a_revoked_invitation_cannot_be_accepted():
    issued = invitation_for(BankFactory())
    invitation_revoke(actor=ADA, invitation=issued.invitation)

    with pytest.raises(InvitationInvalidError):
        invitation_accept(token=issued.token, username="late", password=PASSWORD)


def test_an_accepted_invitation_records_who_accepted_it():
    issued = invitation_for(BankFactory(), role=Role.AUDITOR)

    membership = invitation_accept(token=issued.token, username="aud", password=PASSWORD)

    invitation = StaffInvitation.objects.get(pk=issued.invitation.pk)
    assert invitation.accepted_by == membership.user
    assert invitation.state == StaffInvitation.State.ACCEPTED
    assert membership.role == Role.AUDITOR


def test_bank_update_records_only_what_changed():
    bank = BankFactory(name="Harbour")

    bank_update(
        actor=ADA,
        bank=bank,
        name="Harbour Bank",
        timezone_name=bank.timezone,
        default_locale=bank.default_locale,
        require_2fa_for_all=True,
    )

    entry = AuditEvent.objects.get(action="bank.updated")
    assert entry.details == {"changed": {"name": "Harbour Bank", "require_2fa_for_all": True}}


def test_bank_update_refuses_an_unknown_time_zone():
    bank = BankFactory()

    with pytest.raises(ValidationError):
        bank_update(
            actor=ADA,
            bank=bank,
            name=bank.name,
            timezone_name="Mars/Olympus",
            default_locale="en",
        )
