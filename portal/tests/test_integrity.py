import base64
import io
import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.http import HttpResponse
from django.urls import reverse

from portal import checkpoints
from portal.audit import Actor
from portal.models import AuditCheckpoint, AuditEvent, AuditIntegrityCheck, StaffMembership
from portal.selectors import audit_checkpoint_document
from portal.services import audit_checkpoint_sign, audit_record
from portal.tasks import sign_audit_checkpoints, verify_audit_chains
from portal.tests.factories import BankFactory, StaffMembershipFactory, UserFactory
from portal.tests.test_audit import record_many, tamper

pytestmark = pytest.mark.django_db

Role = StaffMembership.Role
SYSTEM = Actor.system("test")


@pytest.fixture
def harbour():
    bank = BankFactory(slug="harbour", name="Harbour Bank")
    record_many(bank, 4)
    return bank


def staff_client(sign_in, bank, role):
    return sign_in(StaffMembershipFactory(bank=bank, role=role).user)


def integrity_url(bank):
    return reverse("portal:audit_integrity", kwargs={"bank": bank.slug})


def dashboard_url(bank):
    return reverse("portal:dashboard", kwargs={"bank": bank.slug})


def run_verify_checkpoint(path, *args):
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("verify_checkpoint", str(path), *args, stdout=out, stderr=err)
        code = 0
    except SystemExit as exit_:
        code = exit_.code
    return code, out.getvalue(), err.getvalue()


def export(client, bank, checkpoint) -> dict:
    response = client.get(
        reverse(
            "portal:audit_checkpoint_export",
            kwargs={"bank": bank.slug, "checkpoint": checkpoint.pk},
        )
    )
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith("attachment;")
    return json.loads(response.content)


# Integrity checks


def test_the_daily_task_records_an_intact_check_for_every_chain(harbour):
    other = BankFactory()
    record_many(other, 2)

    verify_audit_chains()

    checks = {c.chain.key: c for c in AuditIntegrityCheck.objects.all()}
    assert set(checks) == {f"bank:{harbour.pk}", f"bank:{other.pk}"}
    assert checks[f"bank:{harbour.pk}"].intact
    assert checks[f"bank:{harbour.pk}"].entries == 4
    assert checks[f"bank:{harbour.pk}"].trigger == AuditIntegrityCheck.Trigger.SCHEDULED


def test_a_scheduled_check_writes_no_audit_entry(harbour):
    before = AuditEvent.objects.count()

    verify_audit_chains()

    assert AuditEvent.objects.count() == before


def test_a_tampered_entry_turns_the_integrity_page_and_dashboard_red(harbour, sign_in):
    events = AuditEvent.objects.filter(bank=harbour).order_by("seq")
    tamper("UPDATE portal_auditevent SET details = %s WHERE id = %s", ['{"n": 9}', events[2].pk])
    client = staff_client(sign_in, harbour, Role.AUDITOR)

    verify_audit_chains()
    page = client.get(integrity_url(harbour)).content.decode()
    dashboard = client.get(dashboard_url(harbour)).content.decode()

    assert 'class="card integrity-alarm" role="alert"' in page
    assert "Audit log BROKEN" in page
    assert "Broken at entry #3" in page
    assert "the entry was altered" in page
    assert "panel-alarm" in dashboard
    assert "The audit log is broken at entry #3" in dashboard


def test_an_intact_chain_shows_green_and_no_alarm(harbour, sign_in):
    client = staff_client(sign_in, harbour, Role.AUDITOR)

    verify_audit_chains()
    page = client.get(integrity_url(harbour)).content.decode()
    dashboard = client.get(dashboard_url(harbour)).content.decode()

    assert "integrity-alarm" not in page
    assert '<span class="pill ok">Intact</span> 4 entries' in page
    assert "panel-alarm" not in dashboard
    assert "Intact" in dashboard


def test_verify_now_records_a_manual_check_and_audits_it(harbour, sign_in):
    admin = StaffMembershipFactory(bank=harbour, role=Role.ADMIN).user
    client = sign_in(admin)

    response = client.post(integrity_url(harbour))

    assert response.status_code == 302
    check = AuditIntegrityCheck.objects.get()
    assert (check.trigger, check.intact, check.entries) == ("manual", True, 4)
    assert check.requested_by == admin.username
    entry = AuditEvent.objects.filter(bank=harbour).order_by("-seq").first()
    assert entry.action == "audit.integrity_verified"
    assert entry.details["chains"][0]["intact"] is True


def test_verify_now_after_tampering_names_the_broken_entry(harbour, sign_in):
    events = AuditEvent.objects.filter(bank=harbour).order_by("seq")
    tamper("DELETE FROM portal_auditevent WHERE id = %s", [events[1].pk])
    client = staff_client(sign_in, harbour, Role.ADMIN)

    client.post(integrity_url(harbour))
    page = client.get(integrity_url(harbour)).content.decode()

    check = AuditIntegrityCheck.objects.get()
    assert not check.intact
    assert check.broken_seq == 3
    assert "Broken at entry #3" in page


def test_an_auditor_sees_only_their_banks_checks(harbour, sign_in):
    other = BankFactory(slug="other", name="Other Bank")
    record_many(other, 2)
    verify_audit_chains()
    client = staff_client(sign_in, harbour, Role.AUDITOR)

    page = client.get(integrity_url(harbour)).content.decode()

    assert f"bank:{harbour.pk}" in page
    assert f"bank:{other.pk}" not in page
    assert client.get(integrity_url(other)).status_code == 404


def test_the_platform_page_shows_every_chain_and_verifies_all(harbour, sign_in):
    other = BankFactory(slug="other", name="Other Bank")
    record_many(other, 1)
    audit_record(actor=SYSTEM, action="platform.checked", bank=None)
    tamper(
        "UPDATE portal_auditevent SET action = 'x.y' WHERE id = %s",
        [AuditEvent.objects.filter(bank=other).first().pk],
    )
    client = sign_in(UserFactory(is_superuser=True, is_staff=True))
    url = reverse("portal:platform_audit_integrity")

    client.post(url, {"action": "verify"})
    page = client.get(url).content.decode()

    assert AuditIntegrityCheck.objects.filter(intact=True).count() == 2
    assert AuditIntegrityCheck.objects.filter(intact=False).get().bank == other
    assert "Harbour Bank" in page and "Other Bank" in page and "Platform" in page
    assert page.count('class="pill bad"') == 1


# Checkpoints


def test_a_checkpoint_signs_every_lane_head_together(harbour, settings):
    head = AuditEvent.objects.filter(bank=harbour).order_by("-seq").first()

    (checkpoint,) = audit_checkpoint_sign(actor=SYSTEM, bank=harbour)

    assert checkpoint.head_seq == 4
    assert checkpoint.lanes[0] == {
        "chain": f"bank:{harbour.pk}",
        "head_seq": 4,
        "head_hash": head.hash,
    }
    assert [lane["chain"] for lane in checkpoint.lanes[1:]] == [
        f"bank:{harbour.pk}/{n}" for n in range(1, settings.AUDIT_CHAIN_LANES)
    ]
    assert checkpoint.head_hash == checkpoints.lanes_digest(checkpoint.lanes)
    assert checkpoint.public_key == checkpoints.public_key_b64()


def test_the_daily_task_signs_every_chain(harbour):
    record_many(BankFactory(), 1)
    audit_record(actor=SYSTEM, action="platform.checked", bank=None)

    sign_audit_checkpoints()

    assert AuditCheckpoint.objects.count() == 3


def test_an_exported_checkpoint_verifies_offline_with_the_public_key_alone(harbour, sign_in):
    (checkpoint,) = audit_checkpoint_sign(actor=SYSTEM, bank=harbour)
    document = export(staff_client(sign_in, harbour, Role.AUDITOR), harbour, checkpoint)

    public = Ed25519PublicKey.from_public_bytes(base64.b64decode(document["public_key"]))
    message = json.dumps(document["payload"], sort_keys=True, separators=(",", ":")).encode()
    public.verify(base64.b64decode(document["signature"]), message)  # raises if invalid
    assert document["format"] == document["payload"]["format"] == checkpoints.FORMAT
    assert document["payload"]["scope"] == f"bank:{harbour.pk}"
    assert document["payload"]["lanes"][0]["head_seq"] == 4


def test_verify_checkpoint_accepts_an_untouched_chain_that_grew_since(harbour, sign_in, tmp_path):
    (checkpoint,) = audit_checkpoint_sign(actor=SYSTEM, bank=harbour)
    path = tmp_path / "checkpoint.json"
    path.write_text(
        json.dumps(export(staff_client(sign_in, harbour, Role.ADMIN), harbour, checkpoint))
    )
    record_many(harbour, 3)

    code, out, err = run_verify_checkpoint(path)

    assert code == 0, err
    assert "signature: valid" in out
    assert "every lane still reaches its signed head (4 entries in" in out


@pytest.mark.parametrize(
    ("field", "value"),
    [("head_seq", 3), ("head_hash", "f" * 64), ("signed_at", "2020-01-01T00:00:00.000000+00:00")],
)
def test_a_modified_checkpoint_fails_verification(harbour, tmp_path, field, value):
    (checkpoint,) = audit_checkpoint_sign(actor=SYSTEM, bank=harbour)
    document = audit_checkpoint_document(checkpoint)
    signed = document["payload"] if field == "signed_at" else document["payload"]["lanes"][0]
    signed[field] = value
    path = tmp_path / "checkpoint.json"
    path.write_text(json.dumps(document))

    code, _, err = run_verify_checkpoint(path)

    assert code == 1
    assert "the signature does not match the checkpoint" in err
    with pytest.raises(checkpoints.CheckpointInvalid):
        checkpoints.verify(document)


def test_a_checkpoint_signed_with_another_key_is_refused(harbour, tmp_path, settings):
    (checkpoint,) = audit_checkpoint_sign(actor=SYSTEM, bank=harbour)
    document = audit_checkpoint_document(checkpoint)
    settings.AUDIT_CHECKPOINT_SIGNING_KEY = base64.b64encode(b"k" * 32).decode()
    path = tmp_path / "checkpoint.json"
    path.write_text(json.dumps(document))

    code, _, err = run_verify_checkpoint(path)
    assert code == 1
    assert "different key" in err

    code, _, err = run_verify_checkpoint(path, "--public-key", document["public_key"])
    assert code == 0, err


def test_verify_checkpoint_fails_when_an_entry_before_the_head_was_altered(harbour, tmp_path):
    (checkpoint,) = audit_checkpoint_sign(actor=SYSTEM, bank=harbour)
    path = tmp_path / "checkpoint.json"
    path.write_text(json.dumps(audit_checkpoint_document(checkpoint)))
    first = AuditEvent.objects.filter(bank=harbour).order_by("seq").first()
    tamper("UPDATE portal_auditevent SET actor_label = 'mallory' WHERE id = %s", [first.pk])

    code, out, err = run_verify_checkpoint(path)

    assert code == 1
    assert "signature: valid" in out
    assert "no longer contains the signed head" in err
    assert "entry #1" in err


def test_signing_a_checkpoint_from_the_page_is_audited(harbour, sign_in):
    client = staff_client(sign_in, harbour, Role.ADMIN)

    response = client.post(reverse("portal:audit_checkpoint_sign", kwargs={"bank": harbour.slug}))

    assert response.status_code == 302
    checkpoint = AuditCheckpoint.objects.get()
    entry = AuditEvent.objects.filter(bank=harbour).order_by("-seq").first()
    assert entry.action == "audit.checkpoint_signed"
    assert entry.target_id == str(checkpoint.pk)
    assert checkpoint.head_seq == 4  # signed before its own audit entry


def test_an_auditor_cannot_export_another_banks_checkpoint(harbour, sign_in):
    other = BankFactory(slug="other")
    record_many(other, 1)
    (theirs,) = audit_checkpoint_sign(actor=SYSTEM, bank=other)
    client = staff_client(sign_in, harbour, Role.AUDITOR)

    response: HttpResponse = client.get(
        reverse(
            "portal:audit_checkpoint_export",
            kwargs={"bank": harbour.slug, "checkpoint": theirs.pk},
        )
    )

    assert response.status_code == 404


def test_a_malformed_signing_key_is_a_configuration_error(settings):
    settings.AUDIT_CHECKPOINT_SIGNING_KEY = "not base64!"

    with pytest.raises(ImproperlyConfigured):
        checkpoints.signing_key()
