"""The audit log as auditors read it: sentences, the raw record, the filters, Verify now."""

import pytest
from django.urls import reverse

from portal.audit import Actor
from portal.models import AuditEvent, AuditIntegrityCheck, StaffMembership
from portal.pseudonyms import pseudonym
from portal.services import audit_record
from portal.tests.factories import BankFactory, StaffMembershipFactory, UserFactory
from portal.timeline import ACTIONS, action_choices, sentence, timeline

pytestmark = pytest.mark.django_db

Role = StaffMembership.Role
SYSTEM = Actor.system("daily check")


@pytest.fixture
def harbour():
    return BankFactory(slug="harbour", name="Harbour Bank")


def log_url(bank):
    return reverse("portal:audit_log", kwargs={"bank": bank.slug})


def integrity_url(bank):
    return reverse("portal:audit_integrity", kwargs={"bank": bank.slug})


def member(bank, role, **names):
    user = UserFactory(**names)
    StaffMembershipFactory(bank=bank, user=user, role=role)
    return user


def said(bank, action, *, actor=SYSTEM, **details):
    entry = audit_record(actor=actor, action=action, bank=bank, details=details)
    return sentence(entry)


# Sentences


def test_a_staff_actor_is_named_by_their_full_name(harbour):
    ana = member(harbour, Role.ADMIN, first_name="Ana", last_name="Souza")
    audit_record(
        actor=Actor.staff(ana),
        action="api_key.revoked",
        bank=harbour,
        details={"name": "Core banking", "prefix": "bk_12ab"},
    )

    (entry,) = timeline(harbour, AuditEvent.objects.filter(bank=harbour))

    assert entry.actor == "Ana Souza"
    assert entry.sentence == "Ana Souza revoked the API key “Core banking”."


@pytest.mark.parametrize(
    ("action", "details", "expected"),
    [
        (
            "consent.authorised",
            {
                "scopes": ["balances", "transactions"],
                "accounts": ["chk-1", "sav-2"],
                "expires_at": "2027-03-06T09:30:00Z",
            },
            "Daily check allowed balances and transactions for 2 accounts until 6 Mar 2027.",
        ),
        (
            "notification.handed_back",
            {"event_type": "fraud.alert", "reason": "person_unreachable"},
            "A fraud alerts update was handed back to the bank's own channels "
            "(person_unreachable).",
        ),
        (
            "callback.abandoned",
            {"type": "fraud_alert.answered", "attempts": 8, "error": "HTTP 500"},
            "The bank's fraud_alert.answered callback was abandoned after 8 attempts (HTTP 500).",
        ),
        (
            "bank.updated",
            {"changed": {"idle_timeout_minutes": 30, "support_email": "x@y"}},
            "Daily check changed the bank's settings: idle timeout minutes and support email.",
        ),
        (
            "audit.integrity_verified",
            {"intact": True, "chains": [{"chain": "bank:1", "intact": True, "entries": 41}]},
            "Daily check verified the audit chain: intact, 41 entries.",
        ),
        (
            "audit.integrity_verified",
            {"intact": False, "chains": [{"intact": False, "broken_seq": 7, "entries": 9}]},
            "Daily check verified the audit chain: broken at entry #7.",
        ),
        (
            "partition.dropped",
            {"table": "notifications_outcome", "month": "2025-09", "rows": 1200, "bytes": 9},
            "Daily check dropped the 2025-09 records of notifications_outcome (1200 rows).",
        ),
    ],
)
def test_common_actions_read_as_sentences(harbour, action, details, expected):
    assert said(harbour, action, **details) == expected


def test_an_unknown_action_gets_a_generic_sentence(harbour):
    assert said(harbour, "ledger.reconciled", n=1) == "Ledger: reconciled by daily check."
    assert said(harbour, "integration.went_live") == "Messenger integration live by daily check."


def test_details_of_an_unexpected_shape_fall_back_to_the_generic_sentence(harbour):
    text = said(harbour, "consent.authorised", scopes="balances", accounts={"a": 1})

    assert text == "Daily check allowed sharing."


def test_a_staff_members_username_stays_as_written_at_the_start_of_a_sentence(harbour):
    admin = member(harbour, Role.ADMIN, username="ana.admin")
    entry = audit_record(
        actor=Actor.staff(admin),
        action="staff.role_granted",
        bank=harbour,
        details={"user": "bruno", "role": "auditor"},
    )

    assert sentence(entry) == "ana.admin made bruno a bank auditor."


def test_every_known_action_has_a_label_and_a_sentence_that_never_fails(harbour):
    for action in ACTIONS:
        text = said(harbour, action)
        assert text.endswith("."), action
        assert text[0].isupper(), action


def test_the_action_filter_offers_families_and_every_known_action():
    values = {value for _, group in action_choices()[1:] for value, _ in group}

    assert {"consent.", "consent.revoked", "audit.integrity_verified"} <= values
    assert set(ACTIONS) <= values


def test_details_are_escaped_in_the_timeline_and_the_raw_record(harbour, sign_in):
    auditor = member(harbour, Role.AUDITOR)
    audit_record(
        actor=Actor("api_key", "9", "<b>core</b>"),
        action="integration.paused",
        bank=harbour,
        details={"reason": "<script>alert(1)</script>"},
    )

    page = sign_in(auditor).get(log_url(harbour)).content.decode()

    assert "<script>alert(1)</script>" not in page
    assert "<b>core</b>" not in page
    assert (
        "&lt;b&gt;core&lt;/b&gt; paused the Messenger integration "
        "(&lt;script&gt;alert(1)&lt;/script&gt;)." in page
    )
    assert '<details class="raw"><summary>Raw record' in page
    assert "&quot;reason&quot;: &quot;&lt;script&gt;alert(1)&lt;/script&gt;&quot;" in page


def test_an_entry_page_leads_with_its_sentence_and_raw_record(harbour, sign_in):
    auditor = member(harbour, Role.AUDITOR)
    entry = audit_record(
        actor=SYSTEM,
        action="consent.expired",
        bank=harbour,
        target_type="linking.consent",
        target_id="12",
    )

    page = (
        sign_in(auditor)
        .get(reverse("portal:audit_entry", kwargs={"bank": harbour.slug, "entry": entry.pk}))
        .content.decode()
    )

    assert "Consent #12 expired and its link ended." in page
    assert "Raw record" in page


# Filters


def seqs(response):
    return sorted(event.seq for event in response.context["page"].object_list)


def test_the_actor_filter_finds_staff_by_their_name(harbour, sign_in):
    ana = member(harbour, Role.ADMIN, first_name="Ana", last_name="Souza", username="asouza")
    other = member(harbour, Role.ADMIN, first_name="Bruno", last_name="Lima")
    audit_record(actor=Actor.staff(ana), action="bank.updated", bank=harbour)
    audit_record(actor=Actor.staff(other), action="bank.updated", bank=harbour)
    client = sign_in(member(harbour, Role.AUDITOR))

    response = client.get(log_url(harbour), {"actor": "ana souza"})

    assert response.status_code == 200
    assert seqs(response) == [1]


def test_the_actor_filter_never_finds_another_banks_staff(harbour, sign_in):
    elsewhere = BankFactory(slug="elsewhere")
    ana = member(elsewhere, Role.ADMIN, first_name="Ana", last_name="Souza")
    # An entry of this bank naming, by id only, a user who is not its staff.
    audit_record(actor=Actor("staff", str(ana.pk), "someone"), action="x.y", bank=harbour)
    client = sign_in(member(harbour, Role.AUDITOR))

    assert seqs(client.get(log_url(harbour), {"actor": "Souza"})) == []


def test_the_actor_type_filter_keeps_one_kind_of_actor(harbour, sign_in):
    audit_record(actor=SYSTEM, action="consent.expired", bank=harbour)
    audit_record(actor=Actor("api_key", "3", "Core"), action="events.ingested", bank=harbour)
    client = sign_in(member(harbour, Role.AUDITOR))

    assert seqs(client.get(log_url(harbour), {"actor_type": "api_key"})) == [2]


def test_a_psid_finds_the_entries_that_hold_it_pseudonymously(harbour, sign_in):
    audit_record(
        actor=SYSTEM, action="notification.sent", bank=harbour, details={"psid": "5550001"}
    )
    audit_record(
        actor=SYSTEM, action="notification.sent", bank=harbour, details={"psid": "5550002"}
    )
    audit_record(
        actor=SYSTEM,
        action="link.refused",
        bank=harbour,
        target_type="messenger.psid",
        target_id=pseudonym("5550001"),
    )
    client = sign_in(member(harbour, Role.AUDITOR))

    response = client.get(log_url(harbour), {"psid": "5550001"})

    assert seqs(response) == [1, 3]
    assert "5550001" not in str(AuditEvent.objects.get(seq=1, bank=harbour).details)


def test_a_psid_stored_under_an_older_key_is_still_found(harbour, sign_in, settings):
    settings.PSEUDONYM_KEYS = ["old-key"]
    audit_record(actor=SYSTEM, action="notification.sent", bank=harbour, details={"psid": "42"})
    settings.PSEUDONYM_KEYS = ["new-key", "old-key"]
    client = sign_in(member(harbour, Role.AUDITOR))

    assert seqs(client.get(log_url(harbour), {"psid": "42"})) == [1]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"psid": "55 5000"}, "A PSID is made of digits only."),
        ({"actor_type": "robot"}, "Select a valid choice."),
        ({"date_from": "next week"}, "Enter a valid date."),
        ({"date_from": "2027-02-30"}, "Enter a valid date."),
    ],
)
def test_a_bad_filter_is_a_400_that_says_why(harbour, sign_in, params, message):
    client = sign_in(member(harbour, Role.AUDITOR))

    response = client.get(log_url(harbour), params)

    assert response.status_code == 400
    assert message in response.content.decode()


def test_the_filters_are_dropdowns_and_date_pickers(harbour, sign_in):
    page = sign_in(member(harbour, Role.AUDITOR)).get(log_url(harbour)).content.decode()

    assert '<select name="action"' in page
    assert '<optgroup label="Consent">' in page
    assert '<option value="consent.revoked">Consent revoked</option>' in page
    assert '<select name="actor_type"' in page
    assert '<input type="date" name="date_from"' in page
    assert '<input type="date" name="date_to"' in page


def test_an_unknown_action_in_a_bookmarked_url_stays_picked(harbour, sign_in):
    client = sign_in(member(harbour, Role.AUDITOR))

    page = client.get(log_url(harbour), {"action": "ledger."}).content.decode()

    assert '<option value="ledger." selected>ledger.</option>' in page


def test_wide_tables_scroll_inside_a_keyboard_reachable_region(harbour, sign_in):
    audit_record(actor=SYSTEM, action="consent.expired", bank=harbour)

    page = sign_in(member(harbour, Role.AUDITOR)).get(log_url(harbour)).content.decode()

    assert '<div class="scroll-box" tabindex="0" role="region" aria-label="Audit entries">' in page


def test_every_staff_page_starts_with_a_skip_link_to_main(harbour, sign_in):
    page = sign_in(member(harbour, Role.OPERATOR)).get(log_url(harbour)).content.decode()

    assert '<a class="skip-link" href="#main">Skip to main content</a>' in page
    assert '<main class="page" id="main" tabindex="-1">' in page


# Verify now: who may press it


@pytest.mark.parametrize("role", [Role.ADMIN, Role.AUDITOR])
def test_admins_and_auditors_may_verify_now(harbour, sign_in, role):
    audit_record(actor=SYSTEM, action="bank.updated", bank=harbour)
    user = member(harbour, role)
    client = sign_in(user)

    response = client.post(integrity_url(harbour), follow=True)

    assert response.status_code == 200
    assert "Verified 1 chain(s): intact." in response.content.decode()
    check = AuditIntegrityCheck.objects.get()
    assert (check.trigger, check.intact, check.requested_by) == ("manual", True, user.username)
    entry = AuditEvent.objects.filter(bank=harbour).order_by("-seq").first()
    assert (entry.action, entry.actor_id, entry.details["intact"]) == (
        "audit.integrity_verified",
        str(user.pk),
        True,
    )
    assert AuditEvent.objects.filter(bank=harbour).count() == 2


def test_an_auditor_is_offered_verify_now_and_told_who_may_press_it(harbour, sign_in):
    page = sign_in(member(harbour, Role.AUDITOR)).get(integrity_url(harbour)).content.decode()

    assert "Verify now</button>" in page
    assert "Admins and auditors may press <em>Verify now</em>" in page
    assert "Sign a checkpoint now" not in page


def test_an_operator_may_neither_see_nor_verify_the_chain(harbour, sign_in):
    client = sign_in(member(harbour, Role.OPERATOR))

    assert client.get(integrity_url(harbour)).status_code == 403
    assert client.post(integrity_url(harbour)).status_code == 403
    assert not AuditIntegrityCheck.objects.exists()
    assert not AuditEvent.objects.filter(action="audit.integrity_verified").exists()


def test_another_banks_auditor_cannot_verify_this_chain(harbour, sign_in):
    client = sign_in(member(BankFactory(slug="other"), Role.AUDITOR))

    assert client.post(integrity_url(harbour)).status_code == 404
    assert not AuditIntegrityCheck.objects.exists()


def test_an_auditor_still_cannot_sign_a_checkpoint(harbour, sign_in):
    client = sign_in(member(harbour, Role.AUDITOR))

    response = client.post(reverse("portal:audit_checkpoint_sign", kwargs={"bank": harbour.slug}))

    assert response.status_code == 403
