import re
import secrets
import socket

from django.db import transaction
from django.utils import timezone

from bankside import context
from bankside.logging import redact
from portal.audit import Actor, entry_hash, normalise_json
from portal.models import (
    AuditChain,
    AuditEvent,
    Bank,
    MessengerIntegration,
    StaffMembership,
    WorkerHeartbeat,
)

_ACTION = re.compile(r"^[a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*)+$")


@transaction.atomic
def audit_record(
    *,
    actor: Actor,
    action: str,
    bank: Bank | None,
    target=None,
    target_type: str = "",
    target_id: str = "",
    details: dict | None = None,
    data_categories: list[str] | None = None,
    request_id: str | None = None,
    source_ip: str | None = None,
) -> AuditEvent:
    """Append one entry to the audit chain of `bank` (or the platform's chain).

    Call it inside the transaction of the change it records, so both land or neither.
    The chain head is locked for the rest of that transaction: concurrent writers to one
    bank queue up behind it and the chain never forks. Secret-named keys in `details` are
    masked before anything is stored.
    """
    if not _ACTION.match(action):
        raise ValueError(f"Audit action {action!r} must look like 'noun.verb'.")
    if target is not None:
        target_type = target_type or target._meta.label_lower
        target_id = target_id or str(target.pk)
    current = context.current()
    if request_id is None:
        request_id = current.request_id if current else ""
    if source_ip is None and current is not None:
        source_ip = current.source_ip
    details = normalise_json(redact(details or {}))
    data_categories = sorted(set(data_categories or []))

    key = AuditChain.key_for(bank)
    AuditChain.objects.bulk_create([AuditChain(key=key, bank=bank)], ignore_conflicts=True)
    chain = AuditChain.objects.select_for_update().get(key=key)

    occurred_at = timezone.now()
    seq = chain.head_seq + 1
    fields = {
        "seq": seq,
        "bank_id": bank.pk if bank else None,
        "occurred_at": occurred_at,
        "actor_type": actor.type,
        "actor_id": actor.id,
        "actor_label": actor.label,
        "action": action,
        "target_type": target_type,
        "target_id": str(target_id),
        "request_id": request_id,
        "source_ip": source_ip,
        "details": details,
        "data_categories": data_categories,
        "prev_hash": chain.head_hash,
    }
    digest = entry_hash(chain_key=key, **fields)
    event = AuditEvent.objects.create(chain=chain, hash=digest, **fields)
    AuditChain.objects.filter(pk=chain.pk).update(head_seq=seq, head_hash=digest)
    return event


@transaction.atomic
def bank_create(
    *,
    actor: Actor,
    name: str,
    slug: str,
    timezone_name: str = "UTC",
    default_locale: str = "en",
    support_email: str = "",
    support_phone: str = "",
) -> Bank:
    """Create a bank; invalid fields raise ValidationError and nothing is written."""
    bank = Bank(
        name=name,
        slug=slug,
        timezone=timezone_name,
        default_locale=default_locale,
        support_email=support_email,
        support_phone=support_phone,
    )
    bank.full_clean()
    bank.save()
    audit_record(
        actor=actor,
        action="bank.created",
        bank=bank,
        target=bank,
        details={
            "name": name,
            "slug": slug,
            "timezone": timezone_name,
            "default_locale": default_locale,
        },
    )
    return bank


@transaction.atomic
def staff_membership_grant(*, actor: Actor, bank: Bank, user, role: str) -> StaffMembership:
    """Give `user` the `role` at `bank`, replacing any role they held there."""
    if role not in StaffMembership.Role.values:
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


def worker_heartbeat_record(*, hostname: str | None = None) -> WorkerHeartbeat:
    heartbeat, _ = WorkerHeartbeat.objects.update_or_create(
        hostname=hostname or socket.gethostname(), defaults={"last_seen": timezone.now()}
    )
    return heartbeat


@transaction.atomic
def integration_configure(
    *,
    actor: Actor,
    bank: Bank,
    page_id: str,
    page_access_token: str,
    app_secret: str,
    verify_token: str | None = None,
    callback_url: str = "",
    callback_signing_secret: str = "",
) -> MessengerIntegration:
    """Store the bank's Page credentials (encrypted) and return to draft until checked.

    The audit entry records which fields changed, never their values.
    """
    integration = MessengerIntegration.objects.filter(bank=bank).first()
    changed = []
    if integration is None:
        integration = MessengerIntegration(bank=bank)
        changed = ["created"]
    values = {
        "page_id": page_id,
        "page_access_token": page_access_token,
        "app_secret": app_secret,
        "verify_token": verify_token or integration.verify_token or secrets.token_urlsafe(32),
        "callback_url": callback_url,
        "callback_signing_secret": callback_signing_secret
        or integration.callback_signing_secret
        or secrets.token_urlsafe(32),
    }
    for name, value in values.items():
        if getattr(integration, name, None) != value:
            changed.append(name)
            setattr(integration, name, value)
    integration.status = MessengerIntegration.Status.DRAFT
    integration.status_reason = "Credentials changed: check the connection again."
    integration.full_clean()
    integration.save()
    audit_record(
        actor=actor,
        action="integration.configured",
        bank=bank,
        target=integration,
        details={"page_id": page_id, "fields_changed": changed},
    )
    return integration
