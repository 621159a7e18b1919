"""A bank's country (ISO 3166-1 alpha-2): where staff and `onboard_bank` set it, how it
is checked, and the automated-chat disclosure it decides by default (the time zone does
when it is not set)."""

import io
import json

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse

from portal.audit import Actor
from portal.countries import countries
from portal.models import AuditEvent, Bank, StaffMembership
from portal.services import bank_create
from portal.tests.factories import BankFactory, StaffMembershipFactory, UserFactory

pytestmark = pytest.mark.django_db

ONBOARD = {
    "--name": "Harbour Bank",
    "--slug": "harbour",
    "--page-id": "1234567890",
    "--page-token": "EAAG-page-token-0123456789",
    "--app-secret": "app-secret-0123456789abcdef",
}


def onboard(**overrides) -> dict:
    args = {**ONBOARD, **overrides}
    out = io.StringIO()
    call_command("onboard_bank", *[part for pair in args.items() for part in pair], stdout=out)
    return json.loads(out.getvalue())


def created(**fields) -> Bank:
    root = UserFactory(is_superuser=True, is_staff=True)
    return bank_create(actor=Actor.staff(root), name="New bank", slug="new-bank", **fields)


def test_the_countries_are_iso_3166s_249_codes():
    codes = countries()

    assert len(codes) == 249
    assert codes["DE"] == "Germany" and codes["GB"] == "United Kingdom"
    assert not {"EU", "XK", "ZZ", "IC", "UN"} & set(codes)


@pytest.mark.parametrize("code", ["XX", "EU", "ZZ", "D", "DEU", "1A"])
def test_a_code_that_is_not_a_country_is_refused_and_no_bank_is_written(code):
    with pytest.raises(ValidationError) as error:
        created(country=code)

    assert "is not a country code" in " ".join(error.value.message_dict["country"])
    assert not Bank.objects.exists()


def test_a_code_is_stored_in_capitals():
    assert created(country=" de ").country == "DE"


@pytest.mark.parametrize(
    ("country", "timezone_name", "on"),
    [
        ("DE", "UTC", True),
        ("DE", "America/New_York", True),
        ("FR", "Europe/Berlin", False),
        ("GB", "Europe/London", False),
        ("US", "America/Los_Angeles", True),  # California, as near as a time zone tells
        ("US", "America/New_York", False),
        ("JP", "America/Los_Angeles", False),
    ],
)
def test_a_new_bank_starts_with_the_disclosure_its_country_requires(country, timezone_name, on):
    bank = created(country=country, timezone_name=timezone_name)

    assert bank.disclose_automation is on


@pytest.mark.parametrize(
    ("timezone_name", "on"),
    [
        ("Europe/Berlin", True),
        ("America/Los_Angeles", True),
        ("Europe/Paris", False),
        ("UTC", False),
    ],
)
def test_without_a_country_the_time_zone_decides_the_disclosure(timezone_name, on):
    bank = created(timezone_name=timezone_name)

    assert (bank.country, bank.disclose_automation) == ("", on)


def test_a_platform_admin_creates_a_bank_in_germany_with_the_disclosure_on(sign_in):
    client = sign_in(UserFactory(is_superuser=True, is_staff=True))

    response = client.post(
        reverse("portal:bank_create"),
        {
            "name": "Hafen Bank",
            "slug": "hafen",
            "timezone": "UTC",
            "country": "DE",
            "default_locale": "de",
        },
    )

    assert response.status_code == 302
    bank = Bank.objects.get(slug="hafen")
    assert (bank.country, bank.disclose_automation) == ("DE", True)
    entry = AuditEvent.objects.get(bank=bank, action="bank.created")
    assert entry.details["country"] == "DE"


def test_the_create_form_offers_the_countries_and_refuses_another_code(sign_in):
    client = sign_in(UserFactory(is_superuser=True, is_staff=True))
    form = client.get(reverse("portal:bank_create")).content.decode()
    assert '<option value="DE">Germany (DE)</option>' in form

    response = client.post(
        reverse("portal:bank_create"),
        {"name": "Other", "slug": "other", "timezone": "UTC", "country": "XX"},
    )

    assert response.status_code == 200
    assert "Select a valid choice. XX is not one of the available choices." in (
        response.content.decode()
    )
    assert not Bank.objects.filter(slug="other").exists()


def test_an_admin_sets_the_country_and_it_is_audited(sign_in):
    member = StaffMembershipFactory(role=StaffMembership.Role.ADMIN)
    bank = member.bank

    response = sign_in(member.user).post(
        reverse("portal:bank_settings", kwargs={"bank": bank.slug}),
        {"name": bank.name, "timezone": bank.timezone, "country": "GB", "default_locale": "en"},
    )

    assert response.status_code == 302
    bank.refresh_from_db()
    assert bank.country == "GB"
    assert bank.disclose_automation is False  # the admins' to change, not the country's
    entry = AuditEvent.objects.filter(bank=bank, action="bank.updated").latest("pk")
    assert entry.details == {"changed": {"country": "GB"}}


def test_an_auditor_sees_the_country_by_name(sign_in):
    member = StaffMembershipFactory(role=StaffMembership.Role.AUDITOR)
    Bank.objects.filter(pk=member.bank.pk).update(country="JP")
    unset = StaffMembershipFactory(role=StaffMembership.Role.AUDITOR, bank=BankFactory())

    def settings_page(membership):
        url = reverse("portal:bank_settings", kwargs={"bank": membership.bank.slug})
        return sign_in(membership.user, http_client=Client()).get(url).content.decode()

    assert "<dt>Country</dt><dd>Japan (JP)</dd>" in settings_page(member)
    assert "<dt>Country</dt><dd>—</dd>" in settings_page(unset)


def test_onboard_bank_takes_the_country_and_prints_it_beside_the_contract_keys():
    result = onboard(**{"--country": "de"})

    assert {"bank", "api_key", "webhook_url", "verify_token", "link_url"} <= set(result)
    assert result["country"] == "DE"
    bank = Bank.objects.get(slug="harbour")
    assert (bank.country, bank.disclose_automation) == ("DE", True)


def test_onboard_bank_without_a_country_leaves_it_blank():
    result = onboard()

    assert result["country"] == ""
    assert Bank.objects.get(slug="harbour").country == ""


def test_onboard_bank_refuses_a_bad_country_and_writes_nothing():
    with pytest.raises(CommandError, match=r"Nothing was created: --country: “XX” is not a"):
        onboard(**{"--country": "XX"})

    assert not Bank.objects.exists()
    assert not AuditEvent.objects.exists()
