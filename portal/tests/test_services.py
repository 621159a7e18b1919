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
        "v23.0",
        transport=httpx.MockTransport(lambda request: httpx.Response(status, json=body)),
    )


PAGE_OK = client_answering(200, {"id": "1234567890", "name": "Harbour Help"})
TOKEN_BAD = client_answering(400, {"error": {"code": 190, "message": "expired"}})


@pytest.fixture
def integration():
    return integration_for(BankFactory())


def test_a_draft_that_checks_out_becomes_verified(integration):
    result = integration_check(actor=ADA, integration=integration, client=PAGE_OK)

    assert result.ok and result.page_name == "Harbour Help"
    assert MessengerIntegration.objects.get(pk=integration.pk).status == Status.VERIFIED


def test_a_live_integration_stays_live_after_a_good_check(integration):
    integration_check(actor=ADA, integration=integration, client=PAGE_OK)
    integration_go_live(actor=ADA, integration=integration)

    integration_check(actor=ADA, integration=integration, client=PAGE_OK)

    assert MessengerIntegration.objects.get(pk=integration.pk).status == Status.LIVE


def test_a_bad_token_pauses_even_a_live_integration_and_resume_restores_it(integration):
    integration_check(actor=ADA, integration=integration, client=PAGE_OK)
    integration_go_live(actor=ADA, integration=integration)

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
        integration_go_live(actor=ADA, integration=integration)


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
