"""Maker-checker on message templates and notification policies: who may draft and
approve, four eyes, history, diffs and rollback, and that a draft never reaches customers
before it is approved."""

from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.test import Client
from django.urls import reverse

from portal import selectors, services
from portal.audit import Actor
from portal.events import EventType
from portal.models import (
    AuditEvent,
    MessageTemplate,
    NotificationPolicy,
    StaffMembership,
    TextVersion,
)
from portal.tests.factories import SEED, StaffMembershipFactory, UserFactory

pytestmark = pytest.mark.django_db

Role = StaffMembership.Role
TXN = EventType.TRANSACTION_POSTED
NEW_TEXT = "Paid {amount} at {merchant}."


@pytest.fixture
def bank():
    return services.bank_create(actor=SEED, name="Harbour Bank", slug="harbour")


@pytest.fixture
def people(bank):
    def member(role):
        return StaffMembershipFactory(bank=bank, role=role).user

    return {
        "operator": member(Role.OPERATOR),
        "admin": member(Role.ADMIN),
        "other_admin": member(Role.ADMIN),
        "auditor": member(Role.AUDITOR),
    }


def live(bank, locale="en") -> str:
    return MessageTemplate.objects.get(bank=bank, event_type=TXN, locale=locale).body


def draft_by(user, bank, body=NEW_TEXT, locale="en") -> TextVersion:
    return services.message_template_draft(
        actor=Actor.staff(user), bank=bank, event_type=TXN, locale=locale, body=body
    )


def approve_by(user, version) -> TextVersion:
    return services.message_template_approve(actor=Actor.staff(user), version=version)


def version_url(version, action=""):
    name = "portal:message_template_version" + (f"_{action}" if action else "")
    return reverse(name, kwargs={"bank": version.bank.slug, "version": version.pk})


def edit_url(bank, locale="en"):
    template = MessageTemplate.objects.get(bank=bank, event_type=TXN, locale=locale)
    return reverse(
        "portal:message_template_edit", kwargs={"bank": bank.slug, "template": template.pk}
    )


# Who may draft


@pytest.mark.parametrize("role", ["operator", "admin"])
def test_operators_and_admins_write_drafts(bank, people, role):
    draft = draft_by(people[role], bank)

    assert draft.state == TextVersion.State.DRAFT
    assert draft.author == people[role] and draft.number == 2


def test_an_auditor_writes_no_draft(bank, people, sign_in):
    with pytest.raises(PermissionDenied):
        draft_by(people["auditor"], bank)

    response = sign_in(people["auditor"]).post(edit_url(bank), {"body": NEW_TEXT})

    assert response.status_code == 403
    assert not TextVersion.objects.filter(state=TextVersion.State.DRAFT).exists()


def test_staff_of_another_bank_write_no_draft_here(bank, people):
    stranger = StaffMembershipFactory(role=Role.ADMIN).user

    with pytest.raises(PermissionDenied):
        draft_by(stranger, bank)


# Who may approve: admins only, never the draft's author


def test_an_admin_approves_an_operators_draft(bank, people):
    draft = draft_by(people["operator"], bank)

    approved = approve_by(people["admin"], draft)

    assert approved.state == TextVersion.State.APPROVED
    assert approved.reviewer == people["admin"] and approved.live_from is not None
    assert live(bank) == NEW_TEXT
    first = TextVersion.objects.get(bank=bank, key=f"{TXN}:en", number=1)
    assert first.state == TextVersion.State.SUPERSEDED and first.live_until is not None
    entry = AuditEvent.objects.filter(action="text_version.approved").get()
    assert entry.actor_label == people["admin"].username
    assert entry.details["author"] == people["operator"].username
    assert entry.details["body"] == NEW_TEXT and entry.details["replaces_version"] == 1


def test_an_operator_cannot_approve(bank, people, sign_in):
    draft = draft_by(people["admin"], bank)
    before = live(bank)

    with pytest.raises(PermissionDenied):
        approve_by(people["operator"], draft)
    response = sign_in(people["operator"]).post(version_url(draft, "approve"))

    assert response.status_code == 403
    assert live(bank) == before
    assert TextVersion.objects.get(pk=draft.pk).state == TextVersion.State.DRAFT


def test_an_auditor_cannot_approve(bank, people, sign_in):
    draft = draft_by(people["operator"], bank)

    response = sign_in(people["auditor"]).post(version_url(draft, "approve"))

    assert response.status_code == 403
    assert TextVersion.objects.get(pk=draft.pk).state == TextVersion.State.DRAFT


def test_an_admin_cannot_approve_their_own_draft(bank, people, sign_in):
    draft = draft_by(people["admin"], bank)
    before = live(bank)

    with pytest.raises(ValidationError, match="another admin must approve it"):
        approve_by(people["admin"], draft)
    client = sign_in(people["admin"])
    page = client.get(version_url(draft)).content.decode()
    response = client.post(version_url(draft, "approve"), follow=True)

    assert "Approve and make live" not in page
    assert "You wrote this draft: another admin approves it." in page
    assert "another admin must approve it (four eyes)" in response.content.decode()
    assert live(bank) == before
    assert not AuditEvent.objects.filter(action="text_version.approved").exists()

    approve_by(people["other_admin"], draft)
    assert live(bank) == NEW_TEXT


def test_a_platform_admin_may_approve_a_banks_draft(bank, people):
    root = UserFactory(is_superuser=True, is_staff=True)

    approve_by(root, draft_by(people["admin"], bank))

    assert live(bank) == NEW_TEXT


def test_a_draft_is_approved_once(bank, people):
    draft = draft_by(people["operator"], bank)
    approve_by(people["admin"], draft)

    with pytest.raises(ValidationError, match="no longer waiting for approval"):
        approve_by(people["other_admin"], draft)


def test_a_rejected_draft_never_goes_live(bank, people, sign_in):
    draft = draft_by(people["operator"], bank)
    before = live(bank)

    response = sign_in(people["admin"]).post(version_url(draft, "reject"), follow=True)

    assert "Version 2 is rejected" in response.content.decode()
    assert TextVersion.objects.get(pk=draft.pk).state == TextVersion.State.REJECTED
    assert live(bank) == before
    with pytest.raises(ValidationError):
        approve_by(people["other_admin"], draft)


# Nothing reaches customers before approval


def test_customers_read_the_live_text_until_the_draft_is_approved(bank, people):
    def text_for_customer():
        template = selectors.message_template_for(bank=bank, event_type=TXN, locale="en")
        return template.body

    before = text_for_customer()
    draft = draft_by(people["operator"], bank)
    assert text_for_customer() == before

    approve_by(people["admin"], draft)
    assert text_for_customer() == NEW_TEXT


def test_a_new_language_reaches_customers_only_once_approved(bank, people):
    draft = draft_by(people["operator"], bank, body="{amount} bei {merchant}", locale="de")

    found = selectors.message_template_for(bank=bank, event_type=TXN, locale="de")
    assert found.locale == "en"  # the default language's text meanwhile

    approve_by(people["admin"], draft)
    found = selectors.message_template_for(bank=bank, event_type=TXN, locale="de")
    assert found.locale == "de" and found.body == "{amount} bei {merchant}"


def test_a_second_draft_supersedes_the_waiting_one(bank, people):
    first = draft_by(people["operator"], bank)
    second = draft_by(people["admin"], bank, body="Spent {amount}.")

    assert TextVersion.objects.get(pk=first.pk).state == TextVersion.State.SUPERSEDED
    approve_by(people["other_admin"], second)
    assert live(bank) == "Spent {amount}."


def test_a_draft_identical_to_the_live_text_is_refused(bank, people):
    with pytest.raises(ValidationError, match="Nothing changed"):
        draft_by(people["operator"], bank, body=live(bank))


@pytest.mark.parametrize("written", ["4111 1111 1111 1111", "4111-1111-1111-1111"])
def test_a_card_number_is_refused_in_every_text(bank, people, written):
    with pytest.raises(ValidationError, match="full card number"):
        services.text_version_draft(
            actor=Actor.staff(people["operator"]),
            bank=bank,
            subject="any_text",
            key="any",
            body=f"Your card {written}",
            live_body=None,
        )

    assert not TextVersion.objects.filter(subject="any_text").exists()


# History, diff, rollback


def test_the_history_names_who_wrote_and_who_approved_each_version(bank, people, sign_in):
    approve_by(people["admin"], draft_by(people["operator"], bank))

    page = sign_in(people["auditor"]).get(edit_url(bank)).content.decode()

    history = page.split('id="version-history"')[1].split("</table>")[0]
    assert "Version 2" in history and "Version 1" in history
    assert people["operator"].username in history and people["admin"].username in history
    assert "system" in history  # the default text, version 1


def test_the_diff_shows_removed_and_added_words_escaped(bank, people, sign_in):
    draft = draft_by(people["operator"], bank, body="<b>Paid</b> {amount} at {merchant}.")

    page = sign_in(people["admin"]).get(version_url(draft)).content.decode()

    diff = page.split('id="version-diff"')[1].split("</p>")[0]
    assert "<ins>" in diff and "<del>" in diff
    assert "&lt;b&gt;Paid&lt;/b&gt;" in diff and "<b>Paid" not in diff


def test_a_rollback_is_a_draft_that_goes_live_once_approved(bank, people, sign_in):
    original = live(bank)
    approve_by(people["admin"], draft_by(people["operator"], bank))
    first = TextVersion.objects.get(bank=bank, key=f"{TXN}:en", number=1)

    response = sign_in(people["operator"]).post(version_url(first, "rollback"), follow=True)

    rollback = TextVersion.objects.get(bank=bank, state=TextVersion.State.DRAFT)
    assert "drafts a return to version 1" in response.content.decode()
    assert rollback.body == original and rollback.rollback_of == first and rollback.number == 3
    assert live(bank) == NEW_TEXT  # still the approved text
    approve_by(people["admin"], rollback)
    assert live(bank) == original
    entry = AuditEvent.objects.filter(action="text_version.approved").latest("seq")
    assert entry.details["rollback_of"] == 1


def test_only_a_version_that_was_live_can_be_rolled_back_to(bank, people):
    draft = draft_by(people["operator"], bank)
    services.message_template_reject(actor=Actor.staff(people["admin"]), version=draft)

    with pytest.raises(ValidationError, match="was live"):
        services.message_template_rollback(actor=Actor.staff(people["operator"]), version=draft)


def test_a_version_of_another_bank_is_not_found(bank, people, sign_in):
    other = services.bank_create(actor=SEED, name="Other Bank", slug="other")
    theirs = TextVersion.objects.filter(bank=other).first()

    client: Client = sign_in(people["admin"])
    address = reverse(
        "portal:message_template_version_approve", kwargs={"bank": "harbour", "version": theirs.pk}
    )

    assert client.post(address).status_code == 404


# Notification policies follow the same maker-checker


def policy_draft_by(user, bank, **rules):
    policy = NotificationPolicy.objects.get(bank=bank, event_type=TXN)
    return services.notification_policy_draft(
        actor=Actor.staff(user), policy=policy, enabled=True, **rules
    )


def test_a_policy_draft_decides_nothing_until_an_admin_approves_it(bank, people):
    draft = policy_draft_by(people["operator"], bank, min_amount=Decimal("250"))

    assert selectors.policy_rules_for(bank)[TXN].min_amount is None
    services.notification_policy_approve(actor=Actor.staff(people["admin"]), version=draft)
    assert selectors.policy_rules_for(bank)[TXN].min_amount == Decimal("250.00")


def test_a_policy_draft_is_checked_like_the_policy(bank, people):
    with pytest.raises(ValidationError) as caught:
        policy_draft_by(people["operator"], bank, low_balance_below=Decimal("10"))

    assert "low_balance_below" in caught.value.message_dict
    assert not TextVersion.objects.filter(state=TextVersion.State.DRAFT).exists()


def test_the_same_rules_again_are_nothing_to_approve(bank, people):
    with pytest.raises(ValidationError, match="Nothing changed"):
        policy_draft_by(people["operator"], bank)


def test_a_policy_author_cannot_approve_it_nor_can_an_operator(bank, people):
    draft = policy_draft_by(people["admin"], bank, urgent=True)

    with pytest.raises(ValidationError, match="four eyes"):
        services.notification_policy_approve(actor=Actor.staff(people["admin"]), version=draft)
    with pytest.raises(PermissionDenied):
        services.notification_policy_approve(actor=Actor.staff(people["operator"]), version=draft)

    assert not NotificationPolicy.objects.get(bank=bank, event_type=TXN).urgent


def test_a_deleted_language_ends_its_live_version_and_can_be_drafted_again(bank, people):
    approve_by(people["admin"], draft_by(people["operator"], bank, body="{amount}", locale="fr"))
    template = MessageTemplate.objects.get(bank=bank, event_type=TXN, locale="fr")

    services.message_template_delete(actor=Actor.staff(people["operator"]), template=template)

    ended = TextVersion.objects.get(bank=bank, key=f"{TXN}:fr")
    assert ended.state == TextVersion.State.SUPERSEDED and ended.live_until is not None
    again = draft_by(people["operator"], bank, body="{amount}", locale="fr")
    assert again.number == 2
    approve_by(people["admin"], again)
    assert live(bank, "fr") == "{amount}"


# Each kind of text keeps its own rules on the shared maker-checker


def test_a_version_of_another_kind_of_text_is_refused(bank, people):
    template = draft_by(people["operator"], bank)
    policy = policy_draft_by(people["operator"], bank, urgent=True)
    admin = Actor.staff(people["admin"])

    with pytest.raises(ValidationError, match="not a version of a message template"):
        services.message_template_approve(actor=admin, version=policy)
    with pytest.raises(ValidationError, match="not a version of a notification policy"):
        services.notification_policy_reject(actor=admin, version=template)
    with pytest.raises(ValidationError, match="not a version of a notification policy"):
        services.notification_policy_rollback(actor=admin, version=template)

    assert TextVersion.objects.filter(state=TextVersion.State.DRAFT).count() == 2


def test_a_template_version_that_no_longer_suits_its_event_is_neither_approved_nor_restored(
    bank, people
):
    draft = draft_by(people["operator"], bank)
    TextVersion.objects.filter(pk=draft.pk).update(body="Paid {nonsense}.")
    draft.refresh_from_db()

    with pytest.raises(ValidationError):
        approve_by(people["admin"], draft)
    assert live(bank) != "Paid {nonsense}."
    rejected = services.message_template_reject(actor=Actor.staff(people["admin"]), version=draft)
    assert rejected.state == TextVersion.State.REJECTED  # turning it down needs no check

    first = TextVersion.objects.get(bank=bank, key=f"{TXN}:en", number=1)
    approve_by(people["admin"], draft_by(people["operator"], bank, body="{amount}"))
    TextVersion.objects.filter(pk=first.pk).update(body="Paid {nonsense}.")
    first.refresh_from_db()
    with pytest.raises(ValidationError):
        services.message_template_rollback(actor=Actor.staff(people["operator"]), version=first)
    assert not TextVersion.objects.filter(state=TextVersion.State.DRAFT).exists()


def test_an_approved_policy_is_changed_in_the_approvers_name(bank, people):
    draft = policy_draft_by(people["operator"], bank, urgent=True)

    services.notification_policy_approve(actor=Actor.staff(people["admin"]), version=draft)

    entry = AuditEvent.objects.filter(action="notification_policy.updated").latest("seq")
    assert (entry.actor_type, entry.actor_id) == ("staff", str(people["admin"].pk))
    assert entry.details["changed"] == {"urgent": [False, True]}
