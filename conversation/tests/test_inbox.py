"""The agent inbox: the list, a thread with the consent summary, replies, assignment."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from conversation import tasks
from conversation.models import Conversation, ConversationMessage, ConversationText
from conversation.tests.test_conversation import write
from notifications.tests.factories import contact_for
from portal.models import AuditEvent, StaffMembership, TextVersion
from portal.tests.factories import BankFactory, StaffMembershipFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator(linked):
    return StaffMembershipFactory(bank=linked.bank, role=StaffMembership.Role.OPERATOR).user


@pytest.fixture
def staff(sign_in, operator):
    return sign_in(operator)


@pytest.fixture
def asked(linked, graph):
    """Ana asked for a person."""
    write(linked, "Can I talk to a person please?")
    graph.sent.clear()
    return Conversation.objects.get()


def url(name, linked, *args):
    return reverse(f"conversation:{name}", args=[linked.bank.slug, *args])


def test_the_inbox_lists_conversations_waiting_for_a_person_longest_waiting_first(
    linked, graph, staff
):
    write(linked, "talk to a human")
    _, other = linked.person(name="Bruno Costa")
    write(linked, "my card is stuck in the machine", psid=other.psid)
    _, quiet = linked.person(name="Carla Dias")
    write(linked, "balance", psid=quiet.psid)

    response = staff.get(url("inbox", linked))

    body = response.content.decode()
    assert response.status_code == 200
    assert body.index("Customer") < body.index("Ana Souza") < body.index("Bruno Costa")
    assert "Carla Dias" not in body
    assert "Not understood" in body and "Asked for a person" in body


def test_the_feed_gives_the_same_list_as_json_for_live_updates(linked, asked, staff):
    response = staff.get(url("inbox_feed", linked))

    (row,) = response.json()["conversations"]
    assert row["customer"] == "Ana Souza" and row["reason"] == "Asked for a person"
    assert row["last_message"] == "Can I talk to a person please?"
    assert row["url"] == url("inbox_thread", linked, asked.pk)


def test_another_banks_conversation_is_not_found(linked, asked, sign_in):
    other = StaffMembershipFactory(bank=BankFactory(slug="other"), role="operator").user
    client = sign_in(other)

    response = client.get(reverse("conversation:inbox_thread", args=["other", asked.pk]))

    assert response.status_code == 404


def test_the_thread_shows_the_consent_summary_but_no_account_figures(linked, asked, staff):
    response = staff.get(url("inbox_thread", linked, asked.pk))

    body = response.content.decode()
    assert "Can I talk to a person please?" in body
    assert "Current account •••• 4821" in body and "Credit card •••• 9012" in body
    assert "Balances" in body and "Fraud alerts" in body
    assert "1,204.50" not in body and "1204.50" not in body
    viewed = AuditEvent.objects.get(action="customer_data.viewed")
    assert viewed.target_id == str(linked.customer.pk) and viewed.details["page"] == "agent inbox"


def test_an_operators_reply_goes_out_with_the_human_agent_tag(
    linked, asked, staff, operator, graph, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as nudges:
        response = staff.post(
            url("inbox_reply", linked, asked.pk), {"text": "Hello Ana, Marta from the card team."}
        )
    queued = ConversationMessage.objects.get(author="agent")
    tasks.send_conversation_message(queued.pk)  # what the worker nudged after commit does

    assert response.status_code == 302 and len(nudges) == 1
    (body,) = graph.sent
    assert body["messaging_type"] == "MESSAGE_TAG" and body["tag"] == "HUMAN_AGENT"
    assert body["message"] == {
        "text": "Hello Ana, Marta from the card team.",
        "metadata": f"bankside:r:{queued.pk}",  # its own reference, returned in its echo
    }
    reply = ConversationMessage.objects.get(author="agent")
    assert (reply.state, reply.sent_by, reply.form) == ("sent", operator, "HUMAN_AGENT")
    actions = list(
        AuditEvent.objects.filter(action__startswith="conversation.").values_list(
            "action", flat=True
        )
    )
    assert "conversation.agent_replied" in actions and actions[-1] == "conversation.message_sent"


def test_a_reply_past_seven_days_is_refused_with_the_reason(linked, asked, staff, graph):
    Conversation.objects.filter(pk=asked.pk).update(
        last_inbound_at=timezone.now() - timedelta(days=7, minutes=1)
    )
    contact_for(linked.consent, hours_ago=7 * 24 + 1)
    before = ConversationMessage.objects.count()

    response = staff.post(url("inbox_reply", linked, asked.pk), {"text": "Hello?"})

    assert response.status_code == 400
    assert "more than 7 days ago" in response.content.decode()
    assert ConversationMessage.objects.count() == before and graph.sent == []


def test_the_thread_warns_before_a_reply_once_the_seven_days_are_over(linked, asked, staff):
    Conversation.objects.filter(pk=asked.pk).update(
        last_inbound_at=timezone.now() - timedelta(days=8)
    )
    contact_for(linked.consent, hours_ago=8 * 24)

    body = staff.get(url("inbox_thread", linked, asked.pk)).content.decode()

    assert "more than 7 days ago" in body


def test_an_empty_reply_is_refused(linked, asked, staff):
    response = staff.post(url("inbox_reply", linked, asked.pk), {"text": "   "})

    assert response.status_code == 400
    assert not ConversationMessage.objects.filter(author="agent").exists()


def test_an_operator_takes_the_conversation_and_resolves_it(linked, asked, staff, operator):
    staff.post(url("inbox_assign", linked, asked.pk), {"assignee": "me"})
    asked.refresh_from_db()
    assert asked.assigned_to == operator

    response = staff.post(url("inbox_resolve", linked, asked.pk))

    asked.refresh_from_db()
    assert response.status_code == 302 and not asked.needs_person and asked.resolved_at
    assert staff.get(url("inbox_feed", linked)).json()["conversations"] == []
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"conversation.assigned", "conversation.resolved"} <= actions


def test_a_conversation_cannot_be_given_to_an_auditor(linked, asked, staff):
    auditor = StaffMembershipFactory(bank=linked.bank, role="auditor").user

    staff.post(url("inbox_assign", linked, asked.pk), {"assignee": str(auditor.pk)})

    asked.refresh_from_db()
    assert asked.assigned_to is None


def test_asking_again_after_resolving_reopens_the_conversation(linked, asked, staff, graph):
    staff.post(url("inbox_resolve", linked, asked.pk))

    write(linked, "I need a human")

    asked.refresh_from_db()
    assert asked.needs_person and asked.resolved_at is None


def test_the_thread_feed_lists_new_messages_after_an_id(linked, asked, staff, graph):
    first = ConversationMessage.objects.order_by("id").first()

    response = staff.get(url("inbox_thread_feed", linked, asked.pk) + f"?after={first.pk}")

    texts = [m["text"] for m in response.json()["messages"]]
    assert texts and "Can I talk" not in texts[0]
    assert staff.get(url("inbox_thread_feed", linked, asked.pk) + "?after=x").status_code == 400


def test_the_bank_writes_its_next_steps_after_a_no_per_language(linked, staff, sign_in):
    response = staff.post(
        url("conversation_texts", linked),
        {"locale": "fr", "body": "Nous avons bloqué la carte •••• {last4}."},
    )

    assert response.status_code == 302
    assert not ConversationText.objects.exists()  # a draft until an admin approves it
    draft = TextVersion.objects.get(subject="conversation_text", key="fraud_denied:fr")
    admin = StaffMembershipFactory(bank=linked.bank, role=StaffMembership.Role.ADMIN).user
    sign_in(admin).post(url("conversation_text_version_approve", linked, draft.pk))
    assert (
        ConversationText.objects.get(locale="fr").body == "Nous avons bloqué la carte •••• {last4}."
    )
    assert AuditEvent.objects.filter(action="text_version.approved").exists()


def test_a_next_steps_text_with_an_unknown_placeholder_is_refused(linked, staff):
    response = staff.post(
        url("conversation_texts", linked),
        {"locale": "en", "body": "Call us about {balance}."},
    )

    assert response.status_code == 400
    assert "Unknown placeholder" in response.content.decode()
    assert not ConversationText.objects.exists()


def test_a_next_steps_text_holding_a_card_number_is_refused(linked, staff):
    response = staff.post(
        url("conversation_texts", linked),
        {"locale": "en", "body": "We blocked card 4111 1111 1111 1111. Call us."},
    )

    assert response.status_code == 400
    assert "holds a full card number" in response.content.decode()
    assert not ConversationText.objects.exists()


def test_an_operators_reply_holding_a_card_number_is_refused(linked, asked, staff, graph):
    before = ConversationMessage.objects.count()

    response = staff.post(
        url("inbox_reply", linked, asked.pk), {"text": "Is it card 4111-1111-1111-1111?"}
    )

    assert response.status_code == 400
    assert "holds a full card number" in response.content.decode()
    assert ConversationMessage.objects.count() == before and graph.sent == []
