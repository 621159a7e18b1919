"""Staff passkeys (WebAuthn credentials, django-otp-webauthn) as a second factor.

A passkey is a django-otp device of its owner: registering one needs a session that has
already passed its second factor, and removing one may never leave a staff member who must
use two-factor sign-in without any second factor at all.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django_otp_webauthn.models import WebAuthnCredential

from portal.audit import Actor
from portal.models import StaffRecoveryCode, StaffTOTPDevice
from portal.selectors import two_factor_required
from portal.services.audit import audit_record

if TYPE_CHECKING:
    from django.contrib.auth.models import User

PASSKEY_NAME_MAX = 64  # django-otp's Device.name
PASSKEY_NAME_MISSING = "Give the passkey a name, such as the device it is on."


class LastSecondFactorError(Exception):
    """Removing this passkey would leave a staff member who needs two-factor sign-in
    without any second factor."""


def passkey_name_clean(name: str) -> str:
    """A passkey's name as typed, trimmed; a ValidationError if empty or too long."""
    cleaned = " ".join(name.split())
    if not cleaned:
        raise ValidationError(PASSKEY_NAME_MISSING)
    if len(cleaned) > PASSKEY_NAME_MAX:
        raise ValidationError(f"A passkey name is at most {PASSKEY_NAME_MAX} characters.")
    return cleaned


def _passkey_default_name(user: User) -> str:
    count = WebAuthnCredential.objects.filter(user=user).count()
    return "Passkey" if count == 0 else f"Passkey {count + 1}"


@transaction.atomic
def passkey_register(*, user: User, helper: Any, state: dict[str, Any], data: Any) -> Any:
    """Verify the browser's answer to a registration challenge and keep the new passkey,
    named by default until its owner names it. Nothing is kept when verification fails."""
    name = _passkey_default_name(user)
    credential = helper.register_complete(user=user, state=state, data=data)
    credential.name = name
    credential.save(update_fields=["name"])
    audit_record(
        actor=Actor.staff(user),
        action="staff.passkey_registered",
        bank=None,
        target=credential,
        details={"user": user.get_username(), "passkey": credential.name},
    )
    return credential


@transaction.atomic
def passkey_rename(*, user: User, passkey_id: int, name: str) -> Any:
    """Name one of `user`'s own passkeys; another's is WebAuthnCredential.DoesNotExist."""
    credential = WebAuthnCredential.objects.select_for_update().get(pk=passkey_id, user=user)
    cleaned = passkey_name_clean(name)
    if cleaned == credential.name:
        return credential
    previous = credential.name
    credential.name = cleaned
    credential.save(update_fields=["name"])
    audit_record(
        actor=Actor.staff(user),
        action="staff.passkey_renamed",
        bank=None,
        target=credential,
        details={"user": user.get_username(), "passkey": cleaned, "previous": previous},
    )
    return credential


@transaction.atomic
def passkey_remove(*, user: User, passkey_id: int) -> str:
    """Remove one of `user`'s own passkeys and return its name.

    Refused (LastSecondFactorError) when two-factor sign-in is required of `user` and no
    other second factor would remain: another passkey, a confirmed authenticator app or an
    unused recovery code. The owner's passkeys are locked first, so two removals at once
    cannot each count on the other passkey.
    """
    own = list(WebAuthnCredential.objects.select_for_update().filter(user=user).order_by("pk"))
    credential = next((c for c in own if c.pk == passkey_id), None)
    if credential is None:
        raise WebAuthnCredential.DoesNotExist("No such passkey.")
    others = any(c.confirmed for c in own if c.pk != passkey_id)
    if (
        two_factor_required(user)
        and not others
        and not StaffTOTPDevice.objects.filter(user=user, confirmed=True).exists()
        and not StaffRecoveryCode.objects.filter(device__user=user).exists()
    ):
        raise LastSecondFactorError(
            "This passkey is your only second factor left, and your account needs two-factor "
            "sign-in. Set up an authenticator app or another passkey first, then remove it."
        )
    name = str(credential.name)
    audit_record(
        actor=Actor.staff(user),
        action="staff.passkey_removed",
        bank=None,
        target=credential,
        details={"user": user.get_username(), "passkey": name},
    )
    credential.delete()
    return name
