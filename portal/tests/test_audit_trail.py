import csv
import io
import json
from datetime import UTC, datetime

import pytest
from django.http import StreamingHttpResponse
from django.urls import reverse
from django.utils import timezone

from portal.audit import Actor
from portal.exports import csv_lines
from portal.models import AuditEvent, StaffMembership
from portal.services import audit_record
from portal.tests.factories import BankFactory, StaffMembershipFactory

pytestmark = pytest.mark.django_db

Role = StaffMembership.Role
ALICE = Actor("staff", "7", "alice")
BOB = Actor("staff", "8", "bob")
CORE = Actor("api_key", "3", "Core banking")


def at(day: int, hour: int = 12) -> datetime:
    return datetime(2026, 3, day, hour, tzinfo=UTC)


@pytest.fixture
def seeded(monkeypatch):
    """Harbour's log: six entries over three days by three actors, and one of another bank."""
    bank = BankFactory(slug="harbour", name="Harbour Bank")
    other = BankFactory(slug="other", name="Other Bank")
    plan = [
        (at(1), ALICE, "config.changed", "portal.bank", "1", bank),
        (at(1, 23), BOB, "consent.granted", "linking.consent", "10", bank),
        (at(2), CORE, "consent.revoked", "linking.consent", "10", bank),
        (at(2, 18), ALICE, "consent.granted", "linking.consent", "11", bank),
        (at(3), BOB, "api_key.created", "portal.apikey", "5", bank),
        (at(3, 1), CORE, "=cmd|' /C calc'!A0", "", "", None),  # placeholder, replaced below
        (at(2), ALICE, "consent.granted", "linking.consent", "99", other),
    ]
    entries = {}
    for n, (moment, actor, action, target_type, target_id, owner) in enumerate(plan):
        if owner is None:
            action, owner = "message.sent", bank
            details = {"text": "=HYPERLINK(evil)"}
        else:
            details = {"n": n}
        with monkeypatch.context() as patch:
            patch.setattr(timezone, "now", lambda moment=moment: moment)
            entries[n] = audit_record(
                actor=actor,
                action=action,
                bank=owner,
                target_type=target_type,
                target_id=target_id,
                details=details,
            )
    return bank, other, entries


def seqs(response) -> list[int]:
    return sorted(event.seq for event in response.context["page"].object_list)


def log(client, bank, **params):
    return client.get(reverse("portal:audit_log", kwargs={"bank": bank.slug}), params)


@pytest.fixture
def auditor(seeded, sign_in):
    bank = seeded[0]
    return sign_in(StaffMembershipFactory(bank=bank, role=Role.AUDITOR).user)


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, [1, 2, 3, 4, 5, 6]),
        ({"actor": "alice"}, [1, 4]),
        ({"actor": "8"}, [2, 5]),
        ({"actor": "Core"}, [3, 6]),
        ({"action": "consent.granted"}, [2, 4]),
        ({"action": "consent."}, [2, 3, 4]),
        ({"target_type": "linking.consent", "target_id": "10"}, [2, 3]),
        ({"date_from": "2026-03-02"}, [3, 4, 5, 6]),
        ({"date_to": "2026-03-01"}, [1, 2]),
        ({"date_from": "2026-03-02", "date_to": "2026-03-02"}, [3, 4]),
        ({"actor": "alice", "action": "consent.", "date_from": "2026-03-02"}, [4]),
        ({"actor": "nobody"}, []),
    ],
)
def test_filters_return_exactly_the_right_entries(seeded, auditor, params, expected):
    bank = seeded[0]

    response = log(auditor, bank, **params)

    assert response.status_code == 200
    assert seqs(response) == expected


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"date_from": "yesterday"}, "Enter a valid date."),
        ({"date_from": "2026-03-03", "date_to": "2026-03-01"}, "must not be before the start"),
        ({"action": "consent;drop"}, "letters, digits, dots and underscores"),
        ({"actor": "x" * 201}, "at most 200 characters"),
        ({"date_to": "9999-12-31"}, "Give a date from 2000 to 2099."),
    ],
)
def test_an_invalid_filter_is_a_400_with_a_clear_error(seeded, auditor, params, message):
    response = log(auditor, seeded[0], **params)

    assert response.status_code == 400
    assert message in response.content.decode()


def test_an_entry_page_shows_every_field(seeded, auditor):
    bank, _, entries = seeded
    entry = entries[2]

    page = auditor.get(
        reverse("portal:audit_entry", kwargs={"bank": bank.slug, "entry": entry.pk})
    ).content.decode()

    assert "consent.revoked" in page
    assert "Core banking" in page
    assert entry.hash in page and entry.prev_hash in page


def test_an_auditor_cannot_open_another_banks_entry(seeded, auditor):
    bank, _, entries = seeded

    response = auditor.get(
        reverse("portal:audit_entry", kwargs={"bank": bank.slug, "entry": entries[6].pk})
    )

    assert response.status_code == 404


def export(client, bank, fmt, **params) -> tuple[StreamingHttpResponse, str]:
    response = client.get(reverse(f"portal:audit_export_{fmt}", kwargs={"bank": bank.slug}), params)
    assert isinstance(response, StreamingHttpResponse)
    return response, b"".join(response.streaming_content).decode()


def test_a_csv_export_streams_the_filtered_entries(seeded, auditor):
    bank, _, entries = seeded

    response, body = export(auditor, bank, "csv", action="consent.")

    assert response["Content-Type"].startswith("text/csv")
    assert 'filename="audit-harbour.csv"' in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(body)))
    assert [int(row["seq"]) for row in rows] == [2, 3, 4]
    assert rows[1]["actor_label"] == "Core banking"
    assert rows[1]["hash"] == entries[2].hash
    assert json.loads(rows[0]["details"]) == {"n": 1}


def test_a_jsonl_export_streams_every_entry_as_stored(seeded, auditor):
    bank, _, entries = seeded

    response, body = export(auditor, bank, "jsonl")

    assert response["Content-Type"].startswith("application/jsonl")
    documents = [json.loads(line) for line in body.splitlines()]
    # In the order the entries were made (the sixth is dated before the fifth).
    assert [d["seq"] for d in documents] == [1, 2, 3, 4, 6, 5]
    assert documents[4]["details"] == {"text": "=HYPERLINK(evil)"}
    assert documents[0]["hash"] == entries[0].hash
    assert documents[0]["chain_key"] == f"bank:{bank.pk}"
    assert documents[0]["occurred_at"].startswith("2026-03-01T12:00:00")


def test_csv_cells_never_start_a_formula(seeded, auditor):
    _, body = export(auditor, seeded[0], "csv", action="message.")

    (row,) = csv.DictReader(io.StringIO(body))
    assert json.loads(row["details"]) == {"text": "=HYPERLINK(evil)"}  # inside JSON: quoted
    assert not any(value.startswith(("=", "+", "@")) for value in row.values())


def test_an_export_is_itself_audited_and_excludes_its_own_entry(seeded, auditor):
    bank = seeded[0]

    _, body = export(auditor, bank, "jsonl", actor="alice")

    record = AuditEvent.objects.filter(bank=bank).order_by("-seq").first()
    assert record.action == "audit.exported"
    assert record.details == {
        "what": "audit_events",
        "format": "jsonl",
        "filters": {"actor": "alice"},
    }
    assert '"audit.exported"' not in body


def test_an_export_never_holds_another_banks_entries(seeded, auditor):
    _, body = export(auditor, seeded[0], "jsonl")

    assert '"target_id": "99"' not in body


def test_an_auditor_cannot_export_another_banks_log(seeded, auditor):
    other = seeded[1]

    response = auditor.get(reverse("portal:audit_export_csv", kwargs={"bank": other.slug}))

    assert response.status_code == 404


def test_an_export_with_an_invalid_filter_is_a_400_and_not_audited(seeded, auditor):
    bank = seeded[0]
    before = AuditEvent.objects.count()

    response = auditor.get(
        reverse("portal:audit_export_csv", kwargs={"bank": bank.slug}), {"date_to": "soon"}
    )

    assert response.status_code == 400
    assert "date_to: Enter a valid date." in response.content.decode()
    assert AuditEvent.objects.count() == before


@pytest.mark.parametrize("value", ["=1+1", "+1", "-1", "@SUM(A1)"])
def test_a_csv_cell_that_looks_like_a_formula_is_quoted(value):
    _header, line = csv_lines([{"label": value}], ["label"])

    assert line.strip() == "'" + value
