"""Pausing banks: stop every send of one bank, or of several at once, with a reason."""

from dataclasses import dataclass, field

from django.core.exceptions import ValidationError

from portal.audit import Actor
from portal.models import Bank, MessengerIntegration
from portal.services import audit_record, integration_pause


@dataclass
class PauseReport:
    paused: list[str] = field(default_factory=list)
    already_paused: list[str] = field(default_factory=list)
    not_connected: list[str] = field(default_factory=list)


def banks_pause(*, actor: Actor, banks: list[Bank], reason: str, bulk: bool = False) -> PauseReport:
    """Pause the Messenger integration of each bank: nothing more is sent until resumed.

    Each bank is paused in its own transaction through `integration_pause` (audited in
    that bank's chain; the delivery engine holds its notifications). A bulk pause by a
    platform admin is also recorded once in the platform's chain with the banks named.
    Resuming is per bank, on its integration page, after a connection check.
    """
    reason = reason.strip()
    if not reason:
        raise ValidationError({"reason": "Give the reason for pausing."})
    report = PauseReport()
    for bank in sorted(banks, key=lambda b: b.slug):
        integration = MessengerIntegration.objects.filter(bank=bank).first()
        if integration is None:
            report.not_connected.append(bank.slug)
            continue
        try:
            integration_pause(actor=actor, integration=integration, reason=reason)
        except ValidationError:
            report.already_paused.append(bank.slug)
            continue
        report.paused.append(bank.slug)
    if bulk:
        audit_record(
            actor=actor,
            action="banks.paused",
            bank=None,
            details={
                "reason": reason[:300],
                "paused": report.paused,
                "already_paused": report.already_paused,
                "not_connected": report.not_connected,
            },
        )
    return report
