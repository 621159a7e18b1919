import factory
from django.contrib.auth import get_user_model
from django_otp.oath import TOTP
from django_otp_webauthn.models import WebAuthnCredential

from portal.audit import Actor
from portal.models import Bank, MessageTemplate, StaffMembership, StaffTOTPDevice
from portal.services import (
    api_key_create,
    integration_configure,
    invitation_create,
    message_template_approve,
    message_template_draft,
    notification_defaults_create,
)

PASSWORD = "correct horse battery staple"
SEED = Actor.system("test seed")


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"staff{n}")
    email = factory.LazyAttribute(lambda user: f"{user.username}@bank.example")
    password = factory.django.Password(PASSWORD)


class BankFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Bank
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"Harbour Bank {n}")
    slug = factory.Sequence(lambda n: f"harbour-{n}")
    timezone = "Europe/London"
    default_locale = "en"

    @factory.post_generation
    def notification_defaults(bank, create, extracted, **kwargs):
        """`BankFactory(notification_defaults=True)`: policies, consent settings and
        templates, as `bank_create` gives every bank (audited, so opt-in)."""
        if create and extracted:
            notification_defaults_create(actor=SEED, bank=bank)


class StaffMembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = StaffMembership

    user = factory.SubFactory(UserFactory)
    bank = factory.SubFactory(BankFactory)
    role = StaffMembership.Role.OPERATOR


class TOTPDeviceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = StaffTOTPDevice

    user = factory.SubFactory(UserFactory)
    name = "Authenticator app"
    confirmed = True


class PasskeyFactory(factory.django.DjangoModelFactory):
    """A registered passkey as django-otp-webauthn stores it (made up, never verified)."""

    class Meta:
        model = WebAuthnCredential

    user = factory.SubFactory(UserFactory)
    name = factory.Sequence(lambda n: f"Laptop {n}")
    confirmed = True
    credential_id = factory.Sequence(lambda n: f"credential-{n}".encode())
    public_key = b"not-a-real-cose-key"
    aaguid = "00000000-0000-0000-0000-000000000000"


def totp_code(device: StaffTOTPDevice, *, steps_ahead: int = 0) -> str:
    """The code the user's authenticator app shows now (or `steps_ahead` periods later)."""
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = totp.time + steps_ahead * device.step
    return f"{totp.token():0{device.digits}d}"


def integration_for(bank, **overrides):
    values = {
        "page_id": "1234567890",
        "page_access_token": f"EAAG-page-token-{bank.slug}-0123456789abcdef",
        "app_secret": f"app-secret-{bank.slug}-fedcba9876543210",
    }
    values.update(overrides)
    return integration_configure(actor=SEED, bank=bank, **values).integration


def api_key_for(bank, name: str = "Core banking"):
    return api_key_create(actor=SEED, bank=bank, name=name)


def invitation_for(bank, role=StaffMembership.Role.OPERATOR, email: str = ""):
    return invitation_create(actor=SEED, bank=bank, role=role, email=email)


def template_text_approved(bank, *, event_type: str, locale: str, body: str):
    """A template text as staff make it live: an operator drafts it, an admin approves it."""

    author = StaffMembershipFactory(bank=bank, role=StaffMembership.Role.OPERATOR).user
    approver = StaffMembershipFactory(bank=bank, role=StaffMembership.Role.ADMIN).user
    draft = message_template_draft(
        actor=Actor.staff(author), bank=bank, event_type=event_type, locale=locale, body=body
    )
    message_template_approve(actor=Actor.staff(approver), version=draft)
    written_in = draft.key.partition(":")[2]
    return MessageTemplate.objects.get(bank=bank, event_type=event_type, locale=written_in)
