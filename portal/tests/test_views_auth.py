import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from core.digests import sha256_hex as invitation_token_hash
from portal.models import AuditEvent, StaffInvitation, StaffMembership, StaffTOTPDevice
from portal.tests.factories import (
    PASSWORD,
    BankFactory,
    StaffMembershipFactory,
    TOTPDeviceFactory,
    UserFactory,
    invitation_for,
    totp_code,
)

pytestmark = pytest.mark.django_db

Role = StaffMembership.Role
LOGIN = "/staff/login/"


def dashboard_of(bank) -> str:
    return reverse("portal:dashboard", kwargs={"bank": bank.slug})


def post_login(client, username, password=PASSWORD, **extra):
    return client.post(LOGIN, {"username": username, "password": password}, **extra)


def signed_in(client) -> bool:
    return "_auth_user_id" in client.session


# Password and throttling


@pytest.mark.parametrize("role", [Role.OPERATOR, Role.AUDITOR])
def test_operators_and_auditors_need_a_second_factor_by_default(client, role):
    member = StaffMembershipFactory(role=role)

    response = post_login(client, member.user.username)

    assert response["Location"] == reverse("portal:two_factor_setup")
    assert not signed_in(client)
    assert client.get(dashboard_of(member.bank)).status_code == 302


@pytest.mark.parametrize("role", [Role.OPERATOR, Role.AUDITOR])
def test_operators_and_auditors_with_an_authenticator_are_asked_for_its_code(client, role):
    member = StaffMembershipFactory(role=role)
    device = TOTPDeviceFactory(user=member.user)

    password_step = post_login(client, member.user.username)
    code_step = client.post(reverse("portal:login_verify"), {"code": totp_code(device)})

    assert password_step["Location"] == reverse("portal:login_verify")
    assert code_step.status_code == 302
    assert signed_in(client)
    assert client.get(dashboard_of(member.bank)).status_code == 200


def test_where_the_deployment_relaxes_it_an_operator_signs_in_with_a_password_alone(
    client, settings
):
    settings.STAFF_TWO_FACTOR_FOR_ALL = False
    member = StaffMembershipFactory(role=Role.OPERATOR)

    response = post_login(client, member.user.username)

    assert response.status_code == 302
    assert signed_in(client)
    assert client.get(dashboard_of(member.bank)).status_code == 200


def test_a_wrong_password_is_refused_with_a_clear_message(client):
    member = StaffMembershipFactory(role=Role.OPERATOR)

    response = post_login(client, member.user.username, "not the password")

    assert response.status_code == 200
    assert "The username or password is not correct." in response.content.decode()
    assert not signed_in(client)


def test_five_wrong_passwords_lock_the_username_out_for_15_minutes(client):
    member = StaffMembershipFactory(role=Role.OPERATOR)
    for _ in range(4):
        assert post_login(client, member.user.username, "wrong").status_code == 200

    fifth = post_login(client, member.user.username, "wrong")
    with_right_password = post_login(client, member.user.username)

    assert fifth.status_code == 429
    assert "Sign-in is locked for 15 minutes" in fifth.content.decode()
    assert with_right_password.status_code == 429
    assert not signed_in(client)


def test_the_lockout_is_for_the_username_from_that_address_only(client):
    member = StaffMembershipFactory(role=Role.OPERATOR)
    TOTPDeviceFactory(user=member.user)
    for _ in range(5):
        post_login(client, member.user.username, "wrong", REMOTE_ADDR="198.51.100.7")

    other_address = Client(REMOTE_ADDR="198.51.100.8")
    response = post_login(other_address, member.user.username, REMOTE_ADDR="198.51.100.8")

    assert response["Location"] == reverse("portal:login_verify")


def test_a_user_without_any_bank_role_cannot_sign_in(client):
    user = UserFactory()

    response = post_login(client, user.username)

    assert "no access to any bank" in response.content.decode()
    assert not signed_in(client)


def test_next_must_stay_on_this_site(client):
    member = StaffMembershipFactory(role=Role.OPERATOR)
    device = TOTPDeviceFactory(user=member.user)

    client.post(
        LOGIN,
        {"username": member.user.username, "password": PASSWORD, "next": "https://evil.example/"},
    )
    response = client.post(reverse("portal:login_verify"), {"code": totp_code(device)})

    assert response["Location"] == reverse("portal:staff_home")


# Second factor


def test_an_admin_without_a_device_is_sent_to_enrolment_before_any_page(client):
    member = StaffMembershipFactory(role=Role.ADMIN)

    response = post_login(client, member.user.username)

    assert response["Location"] == reverse("portal:two_factor_setup")
    assert not signed_in(client)
    assert client.get(dashboard_of(member.bank)).status_code == 302


def test_enrolment_shows_a_qr_code_and_the_setup_key(client):
    member = StaffMembershipFactory(role=Role.ADMIN)
    post_login(client, member.user.username)

    page = client.get(reverse("portal:two_factor_setup")).content.decode()

    device = StaffTOTPDevice.objects.get(user=member.user, confirmed=False)
    assert "<svg" in page
    assert device.config_url.split("secret=")[1].split("&")[0][:4] in page


def test_enrolment_with_a_valid_code_signs_the_admin_in(client):
    member = StaffMembershipFactory(role=Role.ADMIN)
    post_login(client, member.user.username)
    client.get(reverse("portal:two_factor_setup"))
    device = StaffTOTPDevice.objects.get(user=member.user, confirmed=False)

    response = client.post(reverse("portal:two_factor_setup"), {"code": totp_code(device)})

    assert response.status_code == 302
    assert signed_in(client)
    assert StaffTOTPDevice.objects.get(pk=device.pk).confirmed
    assert client.get(dashboard_of(member.bank)).status_code == 200
    assert AuditEvent.objects.filter(action="staff.two_factor_enrolled", bank=None).exists()


def test_enrolment_with_a_wrong_code_keeps_the_admin_out(client):
    member = StaffMembershipFactory(role=Role.ADMIN)
    post_login(client, member.user.username)
    client.get(reverse("portal:two_factor_setup"))

    response = client.post(reverse("portal:two_factor_setup"), {"code": "000000"})

    assert response.status_code == 200
    assert "That code is not right" in response.content.decode()
    assert not signed_in(client)


def test_an_admin_with_a_device_must_enter_a_code(client):
    member = StaffMembershipFactory(role=Role.ADMIN)
    TOTPDeviceFactory(user=member.user)

    response = post_login(client, member.user.username)

    assert response["Location"] == reverse("portal:login_verify")
    assert not signed_in(client)


def test_a_valid_totp_code_completes_the_sign_in(client):
    member = StaffMembershipFactory(role=Role.ADMIN)
    device = TOTPDeviceFactory(user=member.user)
    client.post(
        LOGIN,
        {"username": member.user.username, "password": PASSWORD, "next": dashboard_of(member.bank)},
    )

    response = client.post(reverse("portal:login_verify"), {"code": totp_code(device)})

    assert response["Location"] == dashboard_of(member.bank)
    assert signed_in(client)
    assert client.get(dashboard_of(member.bank)).status_code == 200


def test_a_wrong_totp_code_is_refused(client):
    member = StaffMembershipFactory(role=Role.ADMIN)
    device = TOTPDeviceFactory(user=member.user)
    post_login(client, member.user.username)

    response = client.post(
        reverse("portal:login_verify"), {"code": totp_code(device, steps_ahead=5)}
    )

    assert response.status_code == 200
    assert not signed_in(client)


def test_a_pending_sign_in_cannot_enrol_a_second_device(client):
    member = StaffMembershipFactory(role=Role.ADMIN)
    TOTPDeviceFactory(user=member.user)
    post_login(client, member.user.username)

    response = client.get(reverse("portal:two_factor_setup"))

    assert response["Location"] == reverse("portal:login_verify")
    assert StaffTOTPDevice.objects.filter(user=member.user).count() == 1


def test_a_platform_admin_needs_a_second_factor(client):
    admin = UserFactory(is_superuser=True, is_staff=True)

    response = post_login(client, admin.username)

    assert response["Location"] == reverse("portal:two_factor_setup")


def test_a_bank_can_require_a_second_factor_for_everyone(client):
    member = StaffMembershipFactory(role=Role.AUDITOR, bank__require_2fa_for_all=True)

    response = post_login(client, member.user.username)

    assert response["Location"] == reverse("portal:two_factor_setup")
    assert not signed_in(client)


def test_the_django_admin_sends_an_unverified_superuser_to_the_staff_sign_in(client):
    client.force_login(UserFactory(is_superuser=True, is_staff=True))

    response = client.get("/platform-admin/", follow=True)

    assert response.redirect_chain[-1][0].startswith(LOGIN)


def test_the_django_admin_opens_for_a_verified_platform_admin(sign_in):
    client = sign_in(UserFactory(is_superuser=True, is_staff=True))

    assert client.get("/platform-admin/").status_code == 200


def test_a_code_right_after_a_wrong_one_is_throttled(client):
    member = StaffMembershipFactory(role=Role.ADMIN)
    device = TOTPDeviceFactory(user=member.user)
    post_login(client, member.user.username)
    client.post(reverse("portal:login_verify"), {"code": totp_code(device, steps_ahead=5)})

    response = client.post(reverse("portal:login_verify"), {"code": totp_code(device)})

    assert "Too many wrong codes" in response.content.decode()
    assert not signed_in(client)


def test_sign_out_ends_the_session(client, sign_in):
    member = StaffMembershipFactory(role=Role.OPERATOR)
    sign_in(member.user)

    client.post(reverse("portal:logout"))

    assert not signed_in(client)


# Invitations


def test_an_invitation_stores_only_a_hash_of_its_token():
    issued = invitation_for(BankFactory())

    stored = StaffInvitation.objects.get(pk=issued.invitation.pk)

    assert stored.token_hash == invitation_token_hash(issued.token)
    assert issued.token not in stored.token_hash


def test_accepting_an_operator_invitation_creates_the_account_and_leads_to_enrolment(client):
    bank = BankFactory()
    issued = invitation_for(bank, role=Role.OPERATOR)
    url = reverse("portal:invitation_accept", kwargs={"token": issued.token})

    response = client.post(
        url, {"username": "olivia", "password1": PASSWORD, "password2": PASSWORD}
    )

    assert response["Location"] == reverse("portal:two_factor_setup")
    membership = StaffMembership.objects.get(user__username="olivia")
    assert (membership.bank, membership.role) == (bank, Role.OPERATOR)
    assert not signed_in(client)


def test_where_the_deployment_relaxes_it_an_invited_operator_is_signed_in_at_once(client, settings):
    settings.STAFF_TWO_FACTOR_FOR_ALL = False
    bank = BankFactory()
    issued = invitation_for(bank, role=Role.OPERATOR)
    url = reverse("portal:invitation_accept", kwargs={"token": issued.token})

    response = client.post(
        url, {"username": "olivia", "password1": PASSWORD, "password2": PASSWORD}
    )

    assert response["Location"] == dashboard_of(bank)
    assert signed_in(client)


def test_an_invited_admin_enrols_a_second_factor_before_first_use(client):
    bank = BankFactory()
    issued = invitation_for(bank, role=Role.ADMIN)
    url = reverse("portal:invitation_accept", kwargs={"token": issued.token})

    response = client.post(url, {"username": "ada", "password1": PASSWORD, "password2": PASSWORD})

    assert response["Location"] == reverse("portal:two_factor_setup")
    assert not signed_in(client)


def test_an_invitation_works_only_once(client):
    issued = invitation_for(BankFactory())
    url = reverse("portal:invitation_accept", kwargs={"token": issued.token})
    client.post(url, {"username": "first", "password1": PASSWORD, "password2": PASSWORD})
    client.post(reverse("portal:logout"))

    response = client.get(url)

    assert response.status_code == 404
    assert "does not work" in response.content.decode()


def test_an_expired_invitation_is_refused(client):
    issued = invitation_for(BankFactory())
    StaffInvitation.objects.filter(pk=issued.invitation.pk).update(expires_at=timezone.now())

    response = client.post(
        reverse("portal:invitation_accept", kwargs={"token": issued.token}),
        {"username": "late", "password1": PASSWORD, "password2": PASSWORD},
    )

    assert response.status_code == 404
    assert not StaffMembership.objects.filter(user__username="late").exists()


def test_an_invitation_expires_after_72_hours():
    before = timezone.now()
    issued = invitation_for(BankFactory())
    after = timezone.now()

    lifetime = StaffInvitation.LIFETIME
    assert before + lifetime <= issued.invitation.expires_at <= after + lifetime
    assert lifetime.total_seconds() == 72 * 3600


def test_accepting_applies_the_password_validators(client):
    issued = invitation_for(BankFactory())

    response = client.post(
        reverse("portal:invitation_accept", kwargs={"token": issued.token}),
        {"username": "weak", "password1": "12345678", "password2": "12345678"},
    )

    page = response.content.decode()
    assert response.status_code == 200
    assert "too short" in page and "entirely numeric" in page
    assert not StaffMembership.objects.filter(user__username="weak").exists()


def test_accepting_refuses_a_username_already_taken(client):
    UserFactory(username="taken")
    issued = invitation_for(BankFactory())

    response = client.post(
        reverse("portal:invitation_accept", kwargs={"token": issued.token}),
        {"username": "taken", "password1": PASSWORD, "password2": PASSWORD},
    )

    assert "already exists" in response.content.decode()
    assert StaffInvitation.objects.get(pk=issued.invitation.pk).accepted_at is None


def test_an_operator_s_invitation_says_two_factor_sign_in_comes_next(client):
    issued = invitation_for(BankFactory(), role=Role.OPERATOR)

    page = client.get(reverse("portal:invitation_accept", kwargs={"token": issued.token}))

    assert "Next you will set up two-factor sign-in" in page.content.decode()
