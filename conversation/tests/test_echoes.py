"""The conversation's echoes, posted signed to the bank's real webhook as Meta posts them:
a person answering in Meta's Page inbox shows in the agent inbox, and a reply's echo
settles a reply whose worker never recorded it."""

import httpx
import pytest
from django.urls import reverse

from conversation import tasks
from conversation.models import Conversation, ConversationMessage
from conversation.tests.test_conversation import write
from notifications.models import MessageEcho
from notifications.tests.test_echoes import APP_ID, INBOX_APP_ID, echo, post_signed
from portal.models import AuditEvent, StaffMembership
from portal.tests.factories import StaffMembershipFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def bank_app(linked):
    linked.integration.app_id = APP_ID
    linked.integration.save(update_fields=["app_id"])
    return linked


@pytest.fixture
def staff(sign_in, linked):
    return sign_in(
        StaffMembershipFactory(bank=linked.bank, role=StaffMembership.Role.OPERATOR).user
    )


def test_a_page_inbox_echo_reaches_the_agent_inbox(bank_app, graph, staff):
    write(bank_app, "Can I talk to a person please?")
    conversation = Conversation.objects.get()

    body = echo(
        bank_app,
        app_id=INBOX_APP_ID,
        mid="m_inbox_1",
        text="Hi Ana, Marta here from the card team: your new card is on its way.",
    )
    assert post_signed(bank_app, body).status_code == 200
    assert post_signed(bank_app, body).status_code == 200  # Meta retries: shown once

    written = ConversationMessage.objects.get(author="page_inbox")
    assert (written.direction, written.state, written.mid) == ("out", "sent", "m_inbox_1")
    page = staff.get(
        reverse("conversation:inbox_thread", args=[bank_app.bank.slug, conversation.pk])
    ).content.decode()
    assert "Marta here from the card team" in page
    assert "Page inbox" in page
    assert MessageEcho.objects.get().outcome == MessageEcho.Outcome.PAGE_INBOX
    assert AuditEvent.objects.filter(action="conversation.page_inbox_message").count() == 1


def test_without_an_app_id_an_echo_without_our_reference_is_the_page_inbox(linked, graph):
    response = post_signed(linked, echo(linked, app_id=INBOX_APP_ID, text="From the inbox"))

    assert response.status_code == 200

    assert ConversationMessage.objects.get().author == "page_inbox"


def test_a_replys_echo_settles_a_reply_whose_answer_was_lost(bank_app, graph):
    # "Seen" and typing go through; the answer's call is never answered.
    graph.answers = [None, None, httpx.ReadTimeout("the connection dropped after it went out")]
    write(bank_app, "balance")  # the assistant's answer: its call is answered by nobody
    reply = ConversationMessage.objects.get(direction="out")
    assert reply.state == "pending"  # waiting for its echo before it is sent again
    metadata = graph.sent[-1]["message"]["metadata"]
    assert metadata == f"bankside:r:{reply.pk}"

    response = post_signed(bank_app, echo(bank_app, metadata=metadata, mid="m_reply_echo"))
    tasks.sweep_conversations()

    assert response.status_code == 200
    reply.refresh_from_db()
    assert (reply.state, reply.mid) == ("sent", "m_reply_echo")
    assert len([b for b in graph.sent if "message" in b]) == 1  # never sent twice
    entry = AuditEvent.objects.get(action="conversation.message_sent")
    assert entry.details["settled_by"] == "echo"
