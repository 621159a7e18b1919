"""Recovery codes: made at enrolment and shown once, each signs in once, regeneration audited."""

import re

import pytest
from django.urls import reverse

from portal.audit import Actor
from portal.models import AuditEvent, StaffMembership, StaffRecoveryCode, StaffTOTPDevice
from portal.services import recovery_codes_generate
from portal.tests.factories import (
    PASSWORD,
    StaffMembershipFactory,
    TOTPDeviceFactory,
    totp_code,
)

pytestmark = pytest.mark.django_db

Role = StaffMembership.Role
CODE = re.compile(r"<code>([a-z2-9]{4}-[a-z2-9]{4}-[a-z2-9]{4}-[a-z2-9]{4})</code>")


def signed_in(client) -> bool:
    return "_auth_user_id" in client.session


def password_step(client, user):
    response = client.post(
        reverse("portal:login"), {"username": user.username, "password": PASSWORD}
    )
    assert response["Location"] == reverse("portal:login_verify")


def enrolled_with_codes(user) -> list[str]:
    TOTPDeviceFactory(user=user)
    return recovery_codes_generate(actor=Actor.staff(user), user=user)


def test_enrolment_shows_ten_recovery_codes_once(client):
    member = StaffMembershipFactory(role=Role.OPERATOR)
    client.post(reverse("portal:login"), {"username": member.user.username, "password": PASSWORD})
    client.get(reverse("portal:two_factor_setup"))
    device = StaffTOTPDevice.objects.get(user=member.user, confirmed=False)

    done = client.post(reverse("portal:two_factor_setup"), {"code": totp_code(device)})
    shown = client.get(done["Location"])
    again = client.get(reverse("portal:recovery_codes"))

    assert done["Location"] == reverse("portal:recovery_codes")
    codes = CODE.findall(shown.content.decode())
    assert len(set(codes)) == 10
    assert "they are not shown again" in shown.content.decode()
    assert again["Location"] == reverse("portal:account")
    assert signed_in(client)
    stored = set(StaffRecoveryCode.objects.values_list("code_hash", flat=True))
    assert not stored & set(codes), "only hashes are stored"
    assert AuditEvent.objects.filter(action="staff.recovery_codes_generated").count() == 1


def test_the_page_after_the_codes_is_where_sign_in_was_going(client):
    member = StaffMembershipFactory(role=Role.AUDITOR)
    client.post(reverse("portal:login"), {"username": member.user.username, "password": PASSWORD})
    client.get(reverse("portal:two_factor_setup"))
    device = StaffTOTPDevice.objects.get(user=member.user, confirmed=False)
    client.post(reverse("portal:two_factor_setup"), {"code": totp_code(device)})

    page = client.get(reverse("portal:recovery_codes")).content.decode()

    assert f'href="{reverse("portal:staff_home")}"' in page


def test_a_recovery_code_signs_in_once(client):
    member = StaffMembershipFactory(role=Role.OPERATOR)
    codes = enrolled_with_codes(member.user)

    password_step(client, member.user)
    first = client.post(reverse("portal:login_recovery"), {"code": codes[3]})
    assert first.status_code == 302
    assert signed_in(client)
    dashboard = reverse("portal:dashboard", kwargs={"bank": member.bank.slug})
    assert client.get(dashboard).status_code == 200
    client.post(reverse("portal:logout"))

    password_step(client, member.user)
    second = client.post(reverse("portal:login_recovery"), {"code": codes[3]})

    assert second.status_code == 200
    assert "used already" in second.content.decode()
    assert not signed_in(client)
    used = AuditEvent.objects.get(action="staff.recovery_code_used")
    assert used.details["remaining"] == 9


def test_a_recovery_code_is_accepted_as_typed_with_capitals_and_spaces(client):
    member = StaffMembershipFactory(role=Role.ADMIN)
    codes = enrolled_with_codes(member.user)
    password_step(client, member.user)

    response = client.post(
        reverse("portal:login_recovery"), {"code": " " + codes[0].upper().replace("-", " ")}
    )

    assert response.status_code == 302
    assert signed_in(client)


def test_a_wrong_recovery_code_does_not_sign_in(client):
    member = StaffMembershipFactory(role=Role.OPERATOR)
    enrolled_with_codes(member.user)
    password_step(client, member.user)

    response = client.post(reverse("portal:login_recovery"), {"code": "abcd-efgh-jkmn-pqrs"})

    assert response.status_code == 200
    assert not signed_in(client)
    assert StaffRecoveryCode.objects.count() == 10


def test_a_recovery_code_needs_the_password_first(client):
    member = StaffMembershipFactory(role=Role.OPERATOR)
    codes = enrolled_with_codes(member.user)

    response = client.post(reverse("portal:login_recovery"), {"code": codes[0]})

    assert response["Location"] == reverse("portal:login")
    assert not signed_in(client)
    assert StaffRecoveryCode.objects.count() == 10


def test_one_user_s_code_does_not_sign_in_another(client):
    mallory = StaffMembershipFactory(role=Role.OPERATOR)
    victim = StaffMembershipFactory(role=Role.ADMIN)
    enrolled_with_codes(victim.user)
    codes = enrolled_with_codes(mallory.user)
    password_step(client, victim.user)

    response = client.post(reverse("portal:login_recovery"), {"code": codes[0]})

    assert response.status_code == 200
    assert not signed_in(client)


def test_regenerating_replaces_the_old_codes_and_is_audited(sign_in):
    member = StaffMembershipFactory(role=Role.AUDITOR)
    old = enrolled_with_codes(member.user)
    client = sign_in(member.user)

    response = client.post(reverse("portal:recovery_codes"), follow=True)

    new = CODE.findall(response.content.decode())
    assert len(new) == 10 and not set(new) & set(old)
    entry = AuditEvent.objects.get(action="staff.recovery_codes_regenerated")
    assert entry.actor_label == member.user.username
    client.post(reverse("portal:logout"))
    password_step(client, member.user)
    assert client.post(reverse("portal:login_recovery"), {"code": old[0]}).status_code == 200
    assert not signed_in(client)
    assert StaffRecoveryCode.objects.count() == 10


def test_a_new_code_works_after_regenerating(sign_in):
    member = StaffMembershipFactory(role=Role.AUDITOR)
    enrolled_with_codes(member.user)
    client = sign_in(member.user)
    new = CODE.findall(client.post(reverse("portal:recovery_codes"), follow=True).content.decode())
    client.post(reverse("portal:logout"))
    password_step(client, member.user)

    response = client.post(reverse("portal:login_recovery"), {"code": new[0]})

    assert response.status_code == 302
    assert signed_in(client)


def test_the_account_page_counts_the_codes_left(sign_in):
    member = StaffMembershipFactory(role=Role.OPERATOR)
    codes = enrolled_with_codes(member.user)
    from portal.services import recovery_code_sign_in

    recovery_code_sign_in(user=member.user, code=codes[0])

    page = sign_in(member.user).get(reverse("portal:account")).content.decode()

    assert "9 unused recovery codes left" in page


def test_regenerating_needs_a_signed_in_staff_member(client):
    response = client.post(reverse("portal:recovery_codes"))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("portal:login"))
    assert not AuditEvent.objects.filter(action__startswith="staff.recovery_codes").exists()


def test_right_after_a_wrong_code_the_page_says_to_wait(client):
    member = StaffMembershipFactory(role=Role.OPERATOR)
    codes = enrolled_with_codes(member.user)
    password_step(client, member.user)
    client.post(reverse("portal:login_recovery"), {"code": "abcd-efgh-jkmn-pqrs"})

    response = client.post(reverse("portal:login_recovery"), {"code": codes[0]})

    assert "Wait a few seconds" in response.content.decode()
    assert not signed_in(client)
    assert StaffRecoveryCode.objects.count() == 10, "the right code is not spent"
