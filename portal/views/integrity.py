"""Proof of the audit log's integrity: the chain's state, "Verify now", signed checkpoints."""

import json

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods

from portal import checkpoints, selectors, services
from portal.access import ADMIN, AUDITOR, bank_staff, platform_admin
from portal.audit import Actor
from portal.models import AuditCheckpoint, AuditIntegrityCheck


def _checkpoint_download(checkpoint: AuditCheckpoint) -> HttpResponse:
    document = selectors.audit_checkpoint_document(checkpoint)
    name = f"checkpoint-{checkpoint.chain.scope.replace(':', '-')}-{checkpoint.head_seq}.json"
    response = HttpResponse(
        json.dumps(document, indent=2, ensure_ascii=False) + "\n",
        content_type="application/json",
    )
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


def _report_outcome(request, checks: list[AuditIntegrityCheck]) -> None:
    broken = [check for check in checks if not check.intact]
    if broken:
        messages.error(request, f"Integrity check failed for {len(broken)} chain(s).")
    else:
        messages.success(request, f"Verified {len(checks)} chain(s): intact.")


@bank_staff(view=(ADMIN, AUDITOR), change=(ADMIN, AUDITOR))
def audit_integrity(request, bank):
    """The state of the bank's audit log (every lane) as last checked; POST verifies it now.

    Verifying only reads the log, so auditors may ask for it too: it records the check
    and its own audit entry, and changes nothing else. Operators see neither the chain nor
    the button (they have no part in auditing); signing checkpoints stays with admins.
    """
    if request.method == "POST":
        checks = services.audit_integrity_check(
            actor=Actor.staff(request.user),
            trigger=AuditIntegrityCheck.Trigger.MANUAL,
            bank=bank,
        )
        _report_outcome(request, checks)
        return redirect("portal:audit_integrity", bank=bank.slug)
    latest = selectors.audit_integrity_latest(bank=bank)
    return render(
        request,
        "portal/audit/integrity.html",
        {
            "bank": bank,
            "chains": latest,
            "last_check": latest[0][1] if latest else None,
            "checkpoints": selectors.audit_checkpoint_list(bank=bank)[:50],
            "public_key": checkpoints.public_key_b64(),
        },
    )


@bank_staff(change=(ADMIN,))
def audit_checkpoint_sign(request, bank):
    (checkpoint,) = services.audit_checkpoint_sign(actor=Actor.staff(request.user), bank=bank)
    messages.success(
        request,
        f"Signed a checkpoint of {checkpoint.head_seq} entries in {len(checkpoint.lanes)} lane(s).",
    )
    return redirect("portal:audit_integrity", bank=bank.slug)


@bank_staff(view=(ADMIN, AUDITOR))
def audit_checkpoint_export(request, bank, checkpoint: int):
    return _checkpoint_download(selectors.audit_checkpoint_get(bank=bank, pk=checkpoint))


@platform_admin
@require_http_methods(["GET", "POST"])
def platform_audit_integrity(request):
    """Every audit log (each bank's and the platform's) with its last check; POST acts on
    all."""
    if request.method == "POST":
        actor = Actor.staff(request.user)
        if request.POST.get("action") == "checkpoint":
            signed = services.audit_checkpoint_sign(actor=actor)
            messages.success(request, f"Signed {len(signed)} checkpoint(s).")
        else:
            _report_outcome(
                request,
                services.audit_integrity_check(
                    actor=actor, trigger=AuditIntegrityCheck.Trigger.MANUAL
                ),
            )
        return redirect("portal:platform_audit_integrity")
    return render(
        request,
        "portal/audit/platform_integrity.html",
        {
            "chains": selectors.audit_integrity_latest(),
            "checkpoints": AuditCheckpoint.objects.select_related("chain", "bank")[:100],
            "public_key": checkpoints.public_key_b64(),
        },
    )


@platform_admin
@require_http_methods(["GET"])
def platform_audit_checkpoint_export(request, checkpoint: int):
    return _checkpoint_download(
        get_object_or_404(AuditCheckpoint.objects.select_related("chain", "bank"), pk=checkpoint)
    )
