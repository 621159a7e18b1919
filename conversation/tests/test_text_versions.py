"""Maker-checker on the bank's conversation texts (next steps after a "No", the sentence
saying the chat is automated): drafts reach customers only once a second person, an
admin, approves them; one editor serves every kind of text."""

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse

from conversation import selectors, services
from conversation.models import ConversationText
from portal.audit import Actor
from portal.models import StaffMembership, TextVersion
from portal.tests.factories import BankFactory, StaffMembershipFactory

pytestmark = pytest.mark.django_db

Kind = ConversationText.Kind
Role = StaffMembership.Role
NEXT_STEPS = "We blocked your card •••• {last4}. A new one is on its way."


@pytest.fixture
def bank():
    return BankFactory(slug="harbour")


@pytest.fixture
def people(bank):
    return {
        role: StaffMembershipFactory(bank=bank, role=role).user
        for role in (Role.OPERATOR, Role.ADMIN, Role.AUDITOR)
    }


def draft(user, bank, kind=Kind.FRAUD_DENIED, body=NEXT_STEPS, locale="en"):
    return services.conversation_text_draft(
        actor=Actor.staff(user), bank=bank, kind=kind, locale=locale, body=body
    )


def approve(user, version):
    return services.conversation_text_approve(actor=Actor.staff(user), version=version)


def customers_read(bank, kind=Kind.FRAUD_DENIED, locale="en"):
    return selectors.conversation_text_for(bank=bank, kind=kind, locale=locale)


@pytest.mark.parametrize("kind", Kind.values)
def test_the_customer_reads_the_live_text_until_an_admin_approves_the_draft(bank, people, kind):
    body = NEXT_STEPS if kind == Kind.FRAUD_DENIED else "A robot of Harbour Bank answers."
    before = customers_read(bank, kind)

    version = draft(people[Role.OPERATOR], bank, kind, body)
    assert customers_read(bank, kind) == before

    approve(people[Role.ADMIN], version)
    assert customers_read(bank, kind) == body


@pytest.mark.parametrize("role", [Role.OPERATOR, Role.ADMIN])
def test_operators_and_admins_draft(bank, people, role):
    assert draft(people[role], bank).state == TextVersion.State.DRAFT


def test_an_auditor_drafts_nothing(bank, people):
    with pytest.raises(PermissionDenied):
        draft(people[Role.AUDITOR], bank)


def test_an_operator_cannot_approve(bank, people):
    version = draft(people[Role.ADMIN], bank)

    with pytest.raises(PermissionDenied):
        approve(people[Role.OPERATOR], version)

    assert not ConversationText.objects.exists()


def test_the_author_cannot_approve_their_own_draft(bank, people):
    version = draft(people[Role.ADMIN], bank)

    with pytest.raises(ValidationError, match="four eyes"):
        approve(people[Role.ADMIN], version)

    assert not ConversationText.objects.exists()
    second = StaffMembershipFactory(bank=bank, role=Role.ADMIN).user
    approve(second, version)
    assert customers_read(bank) == NEXT_STEPS


def test_a_rollback_returns_to_the_earlier_text_once_approved(bank, people):
    first = approve(people[Role.ADMIN], draft(people[Role.OPERATOR], bank))
    approve(people[Role.ADMIN], draft(people[Role.OPERATOR], bank, body="Call us now."))

    rollback = services.conversation_text_rollback(
        actor=Actor.staff(people[Role.OPERATOR]), version=first
    )
    assert customers_read(bank) == "Call us now."
    approve(people[Role.ADMIN], rollback)

    assert customers_read(bank) == NEXT_STEPS
    assert rollback.rollback_of == first


@pytest.mark.parametrize("kind", Kind.values)
def test_a_card_number_is_refused_in_every_kind(bank, people, kind):
    with pytest.raises(ValidationError, match="full card number"):
        draft(people[Role.OPERATOR], bank, kind, "Your card 4111 1111 1111 1111 is blocked.")


def test_one_editor_serves_every_kind_at_its_own_address(bank, people, sign_in):
    client = sign_in(people[Role.AUDITOR])

    def page(name):
        return client.get(reverse(f"conversation:{name}", kwargs={"bank": bank.slug}))

    next_steps, automated = page("conversation_texts"), page("automated_texts")

    assert next_steps.resolver_match.func is automated.resolver_match.func
    assert "<h1>Next steps after “No, it wasn&#x27;t me”</h1>" in next_steps.content.decode()
    assert "<h1>Telling customers the chat is automated</h1>" in automated.content.decode()


def test_the_editor_lists_the_drafts_waiting_and_the_review_page_approves(bank, people, sign_in):
    version = draft(people[Role.OPERATOR], bank, locale="fr", body="Nous rappelons.")
    admin = sign_in(people[Role.ADMIN])

    editor = admin.get(
        reverse("conversation:conversation_texts", kwargs={"bank": bank.slug})
    ).content.decode()
    review_url = reverse(
        "conversation:conversation_text_version",
        kwargs={"bank": bank.slug, "text_version": version.pk},
    )
    review = admin.get(review_url).content.decode()
    response = admin.post(
        reverse(
            "conversation:conversation_text_version_approve",
            kwargs={"bank": bank.slug, "text_version": version.pk},
        ),
        follow=True,
    )

    assert "Waiting for approval" in editor and review_url in editor
    assert "Approve and make live" in review and "<ins>" in review
    assert "Version 1 is approved" in response.content.decode()
    assert ConversationText.objects.get(locale="fr").body == "Nous rappelons."


def test_a_draft_broken_since_it_was_written_is_refused_even_to_reject(bank, people):
    version = draft(people[Role.OPERATOR], bank)
    TextVersion.objects.filter(pk=version.pk).update(body="Card 4111 1111 1111 1111 blocked.")
    version.refresh_from_db()
    admin = Actor.staff(people[Role.ADMIN])

    with pytest.raises(ValidationError):
        services.conversation_text_approve(actor=admin, version=version)
    with pytest.raises(ValidationError):
        services.conversation_text_reject(actor=admin, version=version)

    version.refresh_from_db()
    assert version.state == TextVersion.State.DRAFT


def test_a_version_of_another_kind_of_text_is_refused(bank, people):
    reply = services.canned_reply_save(
        actor=Actor.staff(people[Role.OPERATOR]), bank=bank, locale="en", title="Hi", body="Hello."
    )
    text = draft(people[Role.OPERATOR], bank)
    admin = Actor.staff(people[Role.ADMIN])

    with pytest.raises(ValidationError, match="not a version of a conversation text"):
        services.conversation_text_approve(actor=admin, version=reply)
    with pytest.raises(ValidationError, match="not a version of a canned reply"):
        services.canned_reply_reject(actor=admin, version=text)
