from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from core.digests import sha256_hex
from portal.audit import Actor
from portal.models import (
    RECOVERY_CODE_ALPHABET,
    Bank,
    StaffInvitation,
    StaffMembership,
    StaffRecoveryCode,
    StaffRecoveryDevice,
    StaffTOTPDevice,
    recovery_code_normalise,
)
from portal.services.audit import audit_record

if TYPE_CHECKING:
    from django.contrib.auth.models import User

Role = StaffMembership.Role


class InvitationInvalidError(Exception):
    """The invitation link is unknown, expired, revoked or already used."""


@dataclass(frozen=True)
class IssuedInvitation:
    """A new invitation and its token, which is shown this once and never stored."""

    invitation: StaffInvitation
    token: str


@transaction.atomic
def staff_membership_grant(*, actor: Actor, bank: Bank, user: User, role: str) -> StaffMembership:
    """Give `user` the `role` at `bank`, replacing any role they held there."""
    if role not in Role.values:
        raise ValueError(f"Unknown staff role {role!r}.")
    membership, created = StaffMembership.objects.update_or_create(
        user=user, bank=bank, defaults={"role": role}
    )
    audit_record(
        actor=actor,
        action="staff.role_granted",
        bank=bank,
        target=membership,
        details={"user": user.get_username(), "role": role, "new": created},
    )
    return membership


@transaction.atomic
def staff_membership_revoke(*, actor: Actor, membership: StaffMembership) -> None:
    """Remove someone from a bank's staff. A bank always keeps at least one admin."""
    membership = (
        StaffMembership.objects.select_for_update()
        .select_related("bank", "user")
        .get(pk=membership.pk)
    )
    if membership.role == Role.ADMIN:
        admins = StaffMembership.objects.select_for_update().filter(
            bank=membership.bank, role=Role.ADMIN
        )
        if len(admins) <= 1:
            raise ValidationError(
                "This is the bank's only admin. Invite another admin before removing them."
            )
    details = {"user": membership.user.get_username(), "role": membership.role}
    audit_record(
        actor=actor,
        action="staff.removed",
        bank=membership.bank,
        target=membership,
        details=details,
    )
    membership.delete()


@transaction.atomic
def invitation_create(
    *, actor: Actor, bank: Bank, role: str, email: str = "", created_by: User | None = None
) -> IssuedInvitation:
    """Invite someone to the bank's staff with `role`, valid for 72 hours and once.

    Only the token's hash is stored; the caller shows the link to the inviter once.
    """
    token = secrets.token_urlsafe(32)
    invitation = StaffInvitation(
        bank=bank,
        role=role,
        email=email.strip(),
        token_hash=sha256_hex(token),
        created_by=created_by,
        expires_at=timezone.now() + StaffInvitation.LIFETIME,
    )
    invitation.full_clean()
    invitation.save()
    audit_record(
        actor=actor,
        action="staff.invited",
        bank=bank,
        target=invitation,
        details={"role": role, "email": invitation.email, "expires_at": invitation.expires_at},
    )
    return IssuedInvitation(invitation=invitation, token=token)


@transaction.atomic
def invitation_revoke(*, actor: Actor, invitation: StaffInvitation) -> StaffInvitation:
    invitation = (
        StaffInvitation.objects.select_for_update().select_related("bank").get(pk=invitation.pk)
    )
    if invitation.state != StaffInvitation.State.PENDING:
        raise ValidationError("Only a pending invitation can be revoked.")
    invitation.revoked_at = timezone.now()
    invitation.save(update_fields=["revoked_at"])
    audit_record(
        actor=actor,
        action="staff.invitation_revoked",
        bank=invitation.bank,
        target=invitation,
        details={"role": invitation.role, "email": invitation.email},
    )
    return invitation


@transaction.atomic
def invitation_accept(*, token: str, username: str, password: str) -> StaffMembership:
    """Create the invitee's account and membership, and use the invitation up.

    The invitation row is locked, so two people racing with the same link cannot both
    get in. Invalid account details raise ValidationError keyed by `username` and
    `password`; an unusable link raises InvitationInvalidError.
    """
    invitation = (
        StaffInvitation.objects.select_for_update()
        .select_related("bank")
        .filter(token_hash=sha256_hex(token))
        .first()
    )
    if invitation is None or invitation.state != StaffInvitation.State.PENDING:
        raise InvitationInvalidError("This invitation link is invalid, expired or already used.")
    user = get_user_model()(username=username.strip(), email=invitation.email)
    errors: dict[str, list[str]] = {}
    try:
        user.full_clean(exclude=["password"])
    except ValidationError as exc:
        errors.update(exc.message_dict)
    try:
        validate_password(password, user)
    except ValidationError as exc:
        errors["password"] = list(exc.messages)
    if errors:
        raise ValidationError(errors)
    user.set_password(password)
    user.save()
    actor = Actor.staff(user)
    membership = staff_membership_grant(
        actor=actor, bank=invitation.bank, user=user, role=invitation.role
    )
    invitation.accepted_at = timezone.now()
    invitation.accepted_by = user
    invitation.save(update_fields=["accepted_at", "accepted_by"])
    audit_record(
        actor=actor,
        action="staff.invitation_accepted",
        bank=invitation.bank,
        target=invitation,
        details={"user": user.get_username(), "role": invitation.role},
    )
    return membership


def two_factor_device_start(*, user: User) -> StaffTOTPDevice:
    """The user's authenticator device being enrolled, kept across page reloads."""
    device: StaffTOTPDevice | None = (
        StaffTOTPDevice.objects.filter(user=user, confirmed=False).order_by("pk").first()
    )
    return device or StaffTOTPDevice.objects.create(
        user=user, name="Authenticator app", confirmed=False
    )


@transaction.atomic
def two_factor_device_confirm(*, user: User, device: StaffTOTPDevice, code: str) -> bool:
    """Confirm enrolment with a first valid code from the app; False if the code is wrong."""
    device = StaffTOTPDevice.objects.select_for_update().get(pk=device.pk, user=user)
    if not device.verify_token(code):
        return False
    device.confirmed = True
    device.save(update_fields=["confirmed"])
    StaffTOTPDevice.objects.filter(user=user, confirmed=False).delete()
    audit_record(
        actor=Actor.staff(user),
        action="staff.two_factor_enrolled",
        bank=None,
        target=user,
        details={"user": user.get_username(), "device": device.name},
    )
    return True


RECOVERY_CODE_COUNT = 10


def _recovery_code_new() -> str:
    raw = "".join(secrets.choice(RECOVERY_CODE_ALPHABET) for _ in range(16))
    return "-".join(raw[i : i + 4] for i in range(0, 16, 4))


@transaction.atomic
def recovery_codes_generate(*, actor: Actor, user: User) -> list[str]:
    """A fresh set of recovery codes for `user`, replacing any earlier set (whose codes stop
    working). The codes are returned this once, to be shown; only their hashes are kept."""
    device = (
        StaffRecoveryDevice.objects.select_for_update().filter(user=user).order_by("pk").first()
    )
    replaced = device is not None
    if device is None:
        device = StaffRecoveryDevice.objects.create(user=user, name="Recovery codes")
    else:
        device.codes.all().delete()
        device.throttle_reset(commit=True)
    codes = [_recovery_code_new() for _ in range(RECOVERY_CODE_COUNT)]
    StaffRecoveryCode.objects.bulk_create(
        StaffRecoveryCode(device=device, code_hash=sha256_hex(recovery_code_normalise(code)))
        for code in codes
    )
    audit_record(
        actor=actor,
        action="staff.recovery_codes_regenerated" if replaced else "staff.recovery_codes_generated",
        bank=None,
        target=user,
        details={"user": user.get_username(), "codes": len(codes)},
    )
    return codes


@transaction.atomic
def recovery_code_sign_in(*, user: User, code: str) -> StaffRecoveryDevice | None:
    """Use one of `user`'s recovery codes to pass the second factor; None if it is wrong,
    already used or the device is throttled. The code can never be used again."""
    device: StaffRecoveryDevice | None = (
        StaffRecoveryDevice.objects.select_for_update().filter(user=user).order_by("pk").first()
    )
    if device is None or not device.verify_token(code):
        return None
    remaining = device.codes.count()
    audit_record(
        actor=Actor.staff(user),
        action="staff.recovery_code_used",
        bank=None,
        target=user,
        details={"user": user.get_username(), "remaining": remaining},
    )
    return device


def recovery_codes_remaining(*, user: User) -> int | None:
    """How many unused recovery codes `user` has, or None if they never had any."""
    device = StaffRecoveryDevice.objects.filter(user=user).order_by("pk").first()
    return None if device is None else device.codes.count()
