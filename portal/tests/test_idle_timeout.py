"""A staff session idle for longer than the bank allows is signed out; activity keeps it."""

import time
from types import SimpleNamespace

import pytest
from django.urls import reverse

from portal.models import AuditEvent, Bank, StaffMembership
from portal.tests.factories import (
    PASSWORD,
    BankFactory,
    StaffMembershipFactory,
    TOTPDeviceFactory,
    UserFactory,
    totp_code,
)

pytestmark = pytest.mark.django_db

Role = StaffMembership.Role


class Clock:
    """The time the staff pages read, moved by the test."""

    def __init__(self) -> None:
        self.now = time.time()

    def time(self) -> float:
        return self.now

    def wait(self, *, minutes: float = 0, seconds: float = 0) -> None:
        self.now += minutes * 60 + seconds


@pytest.fixture
def clock(monkeypatch):
    clock = Clock()
    monkeypatch.setattr("portal.access.time", SimpleNamespace(time=clock.time))
    return clock


def signed_in_through_the_form(client, member) -> None:
    device = TOTPDeviceFactory(user=member.user)
    client.post(reverse("portal:login"), {"username": member.user.username, "password": PASSWORD})
    response = client.post(reverse("portal:login_verify"), {"code": totp_code(device)})
    assert response.status_code == 302


def dashboard(member) -> str:
    return reverse("portal:dashboard", kwargs={"bank": member.bank.slug})


@pytest.mark.parametrize("role", [Role.ADMIN, Role.OPERATOR, Role.AUDITOR])
def test_a_session_idle_past_fifteen_minutes_is_signed_out(client, clock, role):
    member = StaffMembershipFactory(role=role)
    signed_in_through_the_form(client, member)

    clock.wait(minutes=15, seconds=1)
    response = client.get(dashboard(member), follow=True)

    assert response.redirect_chain[0][0].startswith(reverse("portal:login"))
    assert "_auth_user_id" not in client.session
    assert "signed out after 15 minutes without activity" in response.content.decode()


def test_activity_keeps_the_session(client, clock):
    member = StaffMembershipFactory(role=Role.OPERATOR)
    signed_in_through_the_form(client, member)

    for _ in range(4):  # an hour of work, never 15 minutes apart
        clock.wait(minutes=14)
        assert client.get(dashboard(member)).status_code == 200

    assert "_auth_user_id" in client.session


def test_a_page_polling_its_feed_does_not_keep_an_idle_session(client, clock):
    member = StaffMembershipFactory(role=Role.OPERATOR)
    signed_in_through_the_form(client, member)
    feed = reverse("conversation:inbox_feed", kwargs={"bank": member.bank.slug})

    polls = []
    for _ in range(6):  # the inbox left open on a screen, polling every few minutes
        clock.wait(minutes=3)
        polls.append(client.get(feed, HTTP_ACCEPT="application/json").status_code)

    assert polls[:5] == [200] * 5
    assert polls[5] == 302
    assert "_auth_user_id" not in client.session


def test_the_bank_s_own_idle_timeout_applies(client, clock):
    member = StaffMembershipFactory(role=Role.OPERATOR, bank__idle_timeout_minutes=5)
    signed_in_through_the_form(client, member)

    clock.wait(minutes=4)
    still_in = client.get(dashboard(member)).status_code
    clock.wait(minutes=5, seconds=1)
    signed_out = client.get(dashboard(member)).status_code

    assert (still_in, signed_out) == (200, 302)
    assert "_auth_user_id" not in client.session


def test_a_member_of_two_banks_gets_the_shorter_timeout(client, clock):
    member = StaffMembershipFactory(role=Role.OPERATOR, bank__idle_timeout_minutes=60)
    StaffMembershipFactory(user=member.user, role=Role.AUDITOR, bank__idle_timeout_minutes=10)
    signed_in_through_the_form(client, member)

    clock.wait(minutes=10, seconds=1)

    assert client.get(dashboard(member)).status_code == 302


def test_a_session_signed_in_before_the_timeout_existed_starts_counting_at_its_next_page(
    sign_in, clock
):
    member = StaffMembershipFactory(role=Role.AUDITOR)
    client = sign_in(member.user)  # no activity recorded yet

    first = client.get(dashboard(member)).status_code
    clock.wait(minutes=16)
    second = client.get(dashboard(member)).status_code

    assert (first, second) == (200, 302)


def test_an_admin_changes_the_idle_timeout_and_it_is_audited(sign_in):
    member = StaffMembershipFactory(role=Role.ADMIN)
    bank = member.bank

    response = sign_in(member.user).post(
        reverse("portal:bank_settings", kwargs={"bank": bank.slug}),
        {
            "name": bank.name,
            "timezone": bank.timezone,
            "default_locale": "en",
            "idle_timeout_minutes": "30",
        },
    )

    assert response.status_code == 302
    assert Bank.objects.get(pk=bank.pk).idle_timeout_minutes == 30
    entry = AuditEvent.objects.filter(bank=bank, action="bank.updated").latest("pk")
    assert entry.details == {"changed": {"idle_timeout_minutes": 30}}
    assert entry.actor_label == member.user.username


@pytest.mark.parametrize("value", ["0", "481", "ten"])
def test_an_idle_timeout_out_of_range_is_refused(sign_in, value):
    member = StaffMembershipFactory(role=Role.ADMIN)
    bank = member.bank

    response = sign_in(member.user).post(
        reverse("portal:bank_settings", kwargs={"bank": bank.slug}),
        {
            "name": bank.name,
            "timezone": bank.timezone,
            "default_locale": "en",
            "idle_timeout_minutes": value,
        },
    )

    assert response.status_code == 200
    assert Bank.objects.get(pk=bank.pk).idle_timeout_minutes == 15
    assert not AuditEvent.objects.filter(bank=bank, action="bank.updated").exists()


@pytest.mark.parametrize("role", [Role.OPERATOR, Role.AUDITOR])
def test_operators_and_auditors_cannot_change_the_idle_timeout(sign_in, role):
    member = StaffMembershipFactory(role=role)
    bank = member.bank

    response = sign_in(member.user).post(
        reverse("portal:bank_settings", kwargs={"bank": bank.slug}),
        {
            "name": bank.name,
            "timezone": "UTC",
            "default_locale": "en",
            "idle_timeout_minutes": "480",
        },
    )

    assert response.status_code == 403
    assert Bank.objects.get(pk=bank.pk).idle_timeout_minutes == 15


def test_a_platform_admin_without_a_bank_has_the_default_timeout(sign_in, clock):
    root = UserFactory(is_superuser=True, is_staff=True)
    BankFactory()
    client = sign_in(root)
    assert client.get(reverse("portal:bank_list")).status_code == 200

    clock.wait(minutes=15, seconds=1)

    assert client.get(reverse("portal:bank_list")).status_code == 302
