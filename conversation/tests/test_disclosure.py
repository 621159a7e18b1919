"""A bank that tells its customers the chat is automated: the assistant says so at the start
of a conversation, after 7 days without contact, and when a person hands the conversation
back to it; never when the bank turned it off. Only the bank's admins change the setting."""

import re
from datetime import timedelta

import pytest
from django.db.models import F
from django.test import Client
from django.urls import reverse

from conversation.models import Conversation, ConversationMessage, ConversationText
from conversation.tests.test_conversation import sent, write
from portal.audit import Actor
from portal.models import AuditEvent, Bank, StaffMembership, TextVersion
from portal.services import bank_create
from portal.tests.factories import StaffMembershipFactory, UserFactory

pytestmark = pytest.mark.django_db

DISCLOSURE = "You are chatting with an automated assistant of {bank}."


@pytest.fixture
def disclosing(linked):
    Bank.objects.filter(pk=linked.bank.pk).update(disclose_automation=True)
    linked.bank.refresh_from_db()
    return linked


def texts_sent(graph) -> list[str]:
    return [
        body["message"].get("text") or body["message"]["attachment"]["payload"]["text"]
        for body in sent(graph)
    ]


def the_disclosure(linked) -> str:
    return DISCLOSURE.format(bank=linked.bank.name)


def days_pass(days: int) -> None:
    """Everything said so far in the conversation happened `days` earlier."""
    gap = timedelta(days=days)
    ConversationMessage.objects.update(created_at=F("created_at") - gap)
    Conversation.objects.update(
        disclosed_at=F("disclosed_at") - gap, last_inbound_at=F("last_inbound_at") - gap
    )


def test_the_assistant_says_it_is_automated_before_its_first_answer(disclosing, graph):
    write(disclosing, "balance")

    said = texts_sent(graph)
    assert said[0] == the_disclosure(disclosing)
    assert said[1].startswith("Your balances:")
    assert len(said) == 2


def test_not_again_on_the_next_answer_within_seven_days(disclosing, graph):
    write(disclosing, "balance")
    days_pass(6)
    graph.sent.clear()

    write(disclosing, "thanks")

    assert texts_sent(graph) == ["You're welcome."]


def test_again_after_more_than_seven_days_without_contact(disclosing, graph):
    write(disclosing, "balance")
    days_pass(8)
    graph.sent.clear()

    write(disclosing, "thanks")

    assert texts_sent(graph) == [the_disclosure(disclosing), "You're welcome."]


def test_again_when_a_person_hands_the_conversation_back(disclosing, graph, sign_in):
    operator = StaffMembershipFactory(bank=disclosing.bank, role=StaffMembership.Role.OPERATOR).user
    staff = sign_in(operator)
    write(disclosing, "Can I talk to a person please?")
    conversation = Conversation.objects.get()
    # The person resolves the conversation (it leaves the inbox): the assistant answers again.
    staff.post(reverse("conversation:inbox_resolve", args=[disclosing.bank.slug, conversation.pk]))
    graph.sent.clear()

    write(disclosing, "thanks")

    assert texts_sent(graph) == [the_disclosure(disclosing), "You're welcome."]


def test_again_when_a_person_replied_since(disclosing, graph, sign_in):
    operator = StaffMembershipFactory(bank=disclosing.bank, role=StaffMembership.Role.OPERATOR).user
    write(disclosing, "Can I talk to a person please?")
    conversation = Conversation.objects.get()
    sign_in(operator).post(
        reverse("conversation:inbox_reply", args=[disclosing.bank.slug, conversation.pk]),
        {"text": "Hello Ana, Marta here."},
    )
    graph.sent.clear()

    write(disclosing, "balance")

    said = texts_sent(graph)
    assert said[0] == the_disclosure(disclosing) and said[1].startswith("Your balances:")


def test_never_when_the_bank_turned_it_off(linked, graph):
    write(linked, "balance")
    days_pass(8)
    write(linked, "thanks")

    said = texts_sent(graph)
    assert len(said) == 2
    assert not any("automated" in text for text in said)


def test_in_french_for_a_french_customer(disclosing, graph):
    disclosing.customer.locale = "fr"
    disclosing.customer.save()

    write(disclosing, "Quel est mon solde ?")

    assert texts_sent(graph)[0] == (
        f"Vous discutez avec un assistant automatisé de {disclosing.bank.name}."
    )


@pytest.mark.parametrize(
    ("timezone_name", "on"),
    [
        ("America/Los_Angeles", True),
        ("Europe/Berlin", True),
        ("Europe/Paris", False),
        ("UTC", False),
    ],
)
def test_a_new_bank_starts_on_where_its_region_requires_it(timezone_name, on):
    root = UserFactory(is_superuser=True, is_staff=True)
    bank = bank_create(
        actor=Actor.staff(root), name="New bank", slug="new-bank", timezone_name=timezone_name
    )

    assert bank.disclose_automation is on


def settings_posted(client, bank, *, disclose: bool):
    data = {"name": bank.name, "timezone": bank.timezone, "default_locale": "en"}
    if disclose:
        data["disclose_automation"] = "on"
    return client.post(reverse("portal:bank_settings", kwargs={"bank": bank.slug}), data)


def test_an_admin_turns_it_on_and_it_is_audited(sign_in):
    member = StaffMembershipFactory(role=StaffMembership.Role.ADMIN)

    response = settings_posted(sign_in(member.user), member.bank, disclose=True)

    assert response.status_code == 302
    assert Bank.objects.get(pk=member.bank.pk).disclose_automation is True
    entry = AuditEvent.objects.filter(bank=member.bank, action="bank.updated").latest("pk")
    assert entry.details == {"changed": {"disclose_automation": True}}
    assert entry.actor_label == member.user.username


def test_an_admin_turns_it_off(sign_in):
    member = StaffMembershipFactory(role=StaffMembership.Role.ADMIN)
    Bank.objects.filter(pk=member.bank.pk).update(disclose_automation=True)
    member.bank.refresh_from_db()

    response = settings_posted(sign_in(member.user), member.bank, disclose=False)

    assert response.status_code == 302
    assert Bank.objects.get(pk=member.bank.pk).disclose_automation is False
    entry = AuditEvent.objects.filter(bank=member.bank, action="bank.updated").latest("pk")
    assert entry.details == {"changed": {"disclose_automation": False}}


@pytest.mark.parametrize("role", [StaffMembership.Role.OPERATOR, StaffMembership.Role.AUDITOR])
def test_operators_and_auditors_cannot_change_it(sign_in, role):
    member = StaffMembershipFactory(role=role)

    response = settings_posted(sign_in(member.user), member.bank, disclose=True)

    assert response.status_code == 403
    assert Bank.objects.get(pk=member.bank.pk).disclose_automation is False
    assert not AuditEvent.objects.filter(bank=member.bank, action="bank.updated").exists()


def test_an_auditor_sees_the_setting_without_a_form(sign_in):
    member = StaffMembershipFactory(role=StaffMembership.Role.AUDITOR)
    Bank.objects.filter(pk=member.bank.pk).update(disclose_automation=True)

    response = sign_in(member.user).get(
        reverse("portal:bank_settings", kwargs={"bank": member.bank.slug})
    )

    body = response.content.decode()
    assert response.status_code == 200
    assert "<dt>Tell customers the chat is automated</dt><dd>Yes</dd>" in body
    assert 'name="disclose_automation"' not in body


def test_an_admin_sees_the_box_ticked_when_it_is_on(sign_in):
    member = StaffMembershipFactory(role=StaffMembership.Role.ADMIN)
    Bank.objects.filter(pk=member.bank.pk).update(disclose_automation=True)

    response = sign_in(member.user).get(
        reverse("portal:bank_settings", kwargs={"bank": member.bank.slug})
    )

    body = response.content.decode()
    (box,) = re.findall(r'<input[^>]*name="disclose_automation"[^>]*>', body)
    assert "checked" in box
    assert "Tell customers the chat is automated" in body


AUTOMATED_TEXTS = "conversation:automated_texts"


def automated_text_posted(client, bank, locale, body):
    return client.post(
        reverse(AUTOMATED_TEXTS, kwargs={"bank": bank.slug}),
        {"locale": locale, "body": body},
    )


def approved_by(client, bank, locale):
    draft = TextVersion.objects.get(
        bank=bank, subject="conversation_text", key=f"automated:{locale}", state="draft"
    )
    return client.post(
        reverse(
            "conversation:conversation_text_version_approve",
            kwargs={"bank": bank.slug, "text_version": draft.pk},
        )
    )


def test_an_admin_writes_the_sentence_and_the_customer_gets_it_once_approved(
    disclosing, graph, sign_in
):
    author = StaffMembershipFactory(bank=disclosing.bank, role=StaffMembership.Role.ADMIN).user
    approver = StaffMembershipFactory(bank=disclosing.bank, role=StaffMembership.Role.ADMIN).user
    disclosing.customer.locale = "fr"
    disclosing.customer.save()
    own = "Bonjour, je suis le robot de la banque Harbour."

    response = automated_text_posted(sign_in(author), disclosing.bank, "fr", own)
    write(disclosing, "Quel est mon solde ?")
    assert response.status_code == 302
    assert texts_sent(graph)[0] != own  # a draft: the built-in sentence is still sent

    approved_by(sign_in(approver, http_client=Client()), disclosing.bank, "fr")
    Conversation.objects.update(disclosed_at=None)
    graph.sent.clear()
    write(disclosing, "Quel est mon solde ?")

    assert texts_sent(graph)[0] == own
    entry = AuditEvent.objects.filter(bank=disclosing.bank, action="text_version.approved").get()
    assert entry.details["key"] == "automated:fr" and entry.actor_label == approver.username
    assert entry.details["author"] == author.username


def test_the_sentence_takes_no_placeholders(disclosing, sign_in):
    admin = StaffMembershipFactory(bank=disclosing.bank, role=StaffMembership.Role.ADMIN).user

    response = automated_text_posted(sign_in(admin), disclosing.bank, "en", "I am {bank}'s bot")

    assert response.status_code == 400
    assert "takes no placeholders" in response.content.decode()
    assert not ConversationText.objects.exists()


def test_an_operator_drafts_the_sentence_but_cannot_make_it_live(disclosing, sign_in):
    operator = StaffMembershipFactory(bank=disclosing.bank, role=StaffMembership.Role.OPERATOR).user
    client = sign_in(operator)

    page = client.get(reverse(AUTOMATED_TEXTS, args=[disclosing.bank.slug]))
    response = automated_text_posted(client, disclosing.bank, "en", "A robot answers here.")
    approval = approved_by(client, disclosing.bank, "en")

    assert page.status_code == 200 and the_disclosure(disclosing) in page.content.decode()
    assert response.status_code == 302 and approval.status_code == 403
    assert not ConversationText.objects.exists()


def test_an_auditor_writes_no_sentence(disclosing, sign_in):
    auditor = StaffMembershipFactory(bank=disclosing.bank, role=StaffMembership.Role.AUDITOR).user

    response = automated_text_posted(sign_in(auditor), disclosing.bank, "en", "A robot.")

    assert response.status_code == 403
    assert not TextVersion.objects.filter(subject="conversation_text").exists()


def test_the_sentence_holding_a_card_number_is_refused(disclosing, sign_in):
    admin = StaffMembershipFactory(bank=disclosing.bank, role=StaffMembership.Role.ADMIN).user

    response = automated_text_posted(
        sign_in(admin), disclosing.bank, "en", "Our bot. Test card 4111 1111 1111 1111."
    )

    assert response.status_code == 400
    assert "holds a full card number" in response.content.decode()
    assert not TextVersion.objects.filter(subject="conversation_text").exists()


# Before the assistant's own messages, not only its answers


def link_confirmation_sent(linked) -> None:
    from linking.models import LinkMessage
    from linking.services.link_messages import (
        MESSAGE_SENDER,
        link_message_attempt,
        link_message_schedule,
    )

    message = link_message_schedule(consent=linked.consent, kind=LinkMessage.Kind.CONFIRMATION)
    link_message_attempt(actor=MESSAGE_SENDER, message_id=message.pk)
    message.refresh_from_db()
    assert message.state == LinkMessage.State.SENT


def test_a_link_confirmation_that_opens_the_chat_says_first_that_it_is_automated(disclosing, graph):
    link_confirmation_sent(disclosing)

    (said,) = texts_sent(graph)
    assert said.startswith(the_disclosure(disclosing) + "\n\n")
    assert "linked" in said.split("\n\n", 1)[1]


def test_the_answer_after_a_disclosed_link_confirmation_does_not_repeat_it(disclosing, graph):
    link_confirmation_sent(disclosing)
    graph.sent.clear()

    write(disclosing, "thanks")

    assert texts_sent(graph) == ["You're welcome."]


def test_a_link_confirmation_within_a_running_chat_is_not_prefaced(disclosing, graph):
    write(disclosing, "balance")
    graph.sent.clear()

    link_confirmation_sent(disclosing)

    (said,) = texts_sent(graph)
    assert not said.startswith(the_disclosure(disclosing))


def test_a_link_confirmation_of_a_bank_that_does_not_disclose_is_not_prefaced(linked, graph):
    link_confirmation_sent(linked)

    (said,) = texts_sent(graph)
    assert "automated" not in said


def test_a_card_number_warning_that_opens_the_chat_comes_after_the_disclosure(
    disclosing, graph, client, django_capture_on_commit_callbacks
):
    from conversation.tests.test_card_numbers_in_chat import meta_posts, worker_runs

    with django_capture_on_commit_callbacks():
        meta_posts(client, disclosing, ("text", "my card 4111 1111 1111 1111 was stolen"))
    worker_runs()

    said = texts_sent(graph)
    assert said[0] == the_disclosure(disclosing)
    assert "never send card numbers" in said[1]
    assert said.count(the_disclosure(disclosing)) == 1
