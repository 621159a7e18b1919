import re

import pytest
from django.test import Client
from django.urls import reverse

from portal.models import AuditEvent, StaffInvitation, StaffMembership
from portal.tests.factories import StaffMembershipFactory, invitation_for

pytestmark = pytest.mark.django_db

Role = StaffMembership.Role


@pytest.fixture
def admin(sign_in):
    member = StaffMembershipFactory(role=Role.ADMIN)
    return sign_in(member.user), member.bank


def test_an_admin_invites_an_operator_and_sees_the_link_once(admin, settings):
    client, bank = admin
    staff_url = reverse("portal:staff_list", kwargs={"bank": bank.slug})

    shown = client.post(
        reverse("portal:staff_invite", kwargs={"bank": bank.slug}),
        {"role": "operator", "email": "olivia@bank.example"},
        follow=True,
    ).content.decode()
    later = client.get(staff_url).content.decode()

    link = re.search(r'id="reveal-value">([^<]+)<', shown).group(1)
    assert link.startswith(f"{settings.PUBLIC_BASE_URL}/staff/invitations/")
    assert link not in later
    assert "olivia@bank.example" in later and "Pending" in later
    invitation = StaffInvitation.objects.get(bank=bank)
    assert invitation.role == Role.OPERATOR
    entry = AuditEvent.objects.get(bank=bank, action="staff.invited")
    assert link.rsplit("/", 2)[1] not in str(entry.details)


def test_a_revoked_invitation_link_stops_working(admin, client):
    admin_client, bank = admin
    issued = invitation_for(bank)

    admin_client.post(
        reverse(
            "portal:invitation_revoke",
            kwargs={"bank": bank.slug, "invitation": issued.invitation.pk},
        )
    )
    admin_client.post(reverse("portal:logout"))

    response = client.get(reverse("portal:invitation_accept", kwargs={"token": issued.token}))
    assert response.status_code == 404


def test_an_admin_removes_a_staff_member(admin):
    client, bank = admin
    operator = StaffMembershipFactory(bank=bank, role=Role.OPERATOR)

    client.post(
        reverse("portal:membership_remove", kwargs={"bank": bank.slug, "membership": operator.pk})
    )

    assert not StaffMembership.objects.filter(pk=operator.pk).exists()


def test_removing_the_only_admin_is_refused_with_a_message(admin):
    client, bank = admin
    membership = StaffMembership.objects.get(bank=bank, role=Role.ADMIN)

    response = client.post(
        reverse(
            "portal:membership_remove", kwargs={"bank": bank.slug, "membership": membership.pk}
        ),
        follow=True,
    )

    assert "only admin" in response.content.decode()
    assert StaffMembership.objects.filter(pk=membership.pk).exists()


def test_a_removed_member_loses_access_at_once(admin, sign_in, client):
    admin_client, bank = admin
    operator = StaffMembershipFactory(bank=bank, role=Role.OPERATOR)
    operator_client = sign_in(operator.user, http_client=Client())

    admin_client.post(
        reverse("portal:membership_remove", kwargs={"bank": bank.slug, "membership": operator.pk})
    )

    response = operator_client.get(reverse("portal:dashboard", kwargs={"bank": bank.slug}))
    assert response.status_code == 302
