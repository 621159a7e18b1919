"""A customer who types a card number into the chat: it is never stored, never shown to
staff, and the customer is told once not to send card numbers here."""

import hashlib
import hmac
import itertools
import json

import pytest
from django.urls import reverse
from django.utils import timezone

from conversation import tasks
from conversation.models import ConversationMessage
from portal.models import StaffMembership
from portal.tests.factories import StaffMembershipFactory

pytestmark = pytest.mark.django_db

_mids = itertools.count(1)
PAN_WRITTEN = ("4111 1111 1111 1111", "4111111111111111", "4111-1111-1111-1111")


def meta_posts(client, linked, *items, psid=None):
    """Meta delivers what the person wrote, signed with the app secret, as one batch."""
    messaging = []
    for kind, value in items:
        event = {"mid": f"m_pan_{next(_mids)}"}
        if kind == "text":
            content = {"message": {**event, "text": value}}
        elif kind == "quick_reply":
            content = {"message": {**event, "text": "Yes", "quick_reply": {"payload": value}}}
        else:
            content = {"postback": {**event, "title": value, "payload": value}}
        messaging.append(
            {
                "sender": {"id": psid or linked.consent.psid},
                "recipient": {"id": linked.integration.page_id},
                "timestamp": int(timezone.now().timestamp() * 1000),
                **content,
            }
        )
    body = json.dumps(
        {
            "object": "page",
            "entry": [{"id": linked.integration.page_id, "time": 1, "messaging": messaging}],
        }
    ).encode()
    signature = hmac.new(linked.integration.app_secret.encode(), body, hashlib.sha256)
    return client.post(
        reverse("messenger-webhook", args=[linked.bank.slug]),
        body,
        content_type="application/json",
        headers={"X-Hub-Signature-256": "sha256=" + signature.hexdigest()},
    )


def worker_runs():
    """What the workers do with the nudges: answer what came in, send what is queued."""
    for pk in ConversationMessage.objects.filter(direction="in", intent="").values_list(
        "pk", flat=True
    ):
        tasks.answer_inbound(pk)
    for pk in ConversationMessage.objects.filter(direction="out", state="pending").values_list(
        "pk", flat=True
    ):
        tasks.send_conversation_message(pk)


def texts_sent(graph) -> list[str]:
    return [body["message"].get("text", "") for body in graph.sent if "message" in body]


def warnings_sent(graph) -> list[str]:
    return [text for text in texts_sent(graph) if "never send card numbers" in text]


def stored_texts() -> str:
    return json.dumps(
        list(ConversationMessage.objects.values("text", "quick_reply_payload", "payload")),
        ensure_ascii=False,
    )


@pytest.mark.parametrize("written", PAN_WRITTEN)
def test_a_card_number_typed_in_the_chat_is_stored_masked_and_warned_about_once(
    linked, graph, client, django_capture_on_commit_callbacks, written
):
    with django_capture_on_commit_callbacks():
        response = meta_posts(client, linked, ("text", f"my card {written} was stolen"))
    worker_runs()

    assert response.status_code == 200
    inbound = ConversationMessage.objects.get(direction="in")
    assert inbound.text == "my card •••• 1111 was stolen"
    assert "4111" not in stored_texts()
    assert warnings_sent(graph) == [
        "For your safety, never send card numbers in this chat: we have hidden the one you "
        f"sent. {linked.bank.name} will never ask you for your full card number here."
    ]
    assert not any("4111" in text for text in texts_sent(graph))


def test_a_second_card_number_gets_no_second_warning(
    linked, graph, client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks():
        meta_posts(client, linked, ("text", "card 4111 1111 1111 1111"))
    worker_runs()
    with django_capture_on_commit_callbacks():
        meta_posts(client, linked, ("text", "and 5500 0000 0000 0004 too"), ("text", "balance"))
    worker_runs()

    assert len(warnings_sent(graph)) == 1
    assert "5500" not in stored_texts() and "•••• 0004" in stored_texts()


def test_two_card_numbers_in_one_batch_get_one_warning(
    linked, graph, client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks():
        meta_posts(client, linked, ("text", "4111111111111111"), ("text", "5500-0000-0000-0004"))
    worker_runs()

    assert len(warnings_sent(graph)) == 1


def test_the_warning_is_in_the_customers_language(
    linked, graph, client, django_capture_on_commit_callbacks
):
    linked.customer.locale = "fr"
    linked.customer.save()

    with django_capture_on_commit_callbacks():
        meta_posts(client, linked, ("text", "ma carte 4111 1111 1111 1111 est perdue"))
    worker_runs()

    (warning,) = [t for t in texts_sent(graph) if "numéro de carte" in t]
    assert warning.startswith("Pour votre sécurité, n'envoyez jamais de numéro de carte")


def test_an_unlinked_person_is_warned_too(
    linked, graph, client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks():
        meta_posts(client, linked, ("text", "4111 1111 1111 1111"), psid="9988776655")
    worker_runs()

    assert len(warnings_sent(graph)) == 1
    assert "4111" not in stored_texts()


@pytest.mark.parametrize("kind", ["postback", "quick_reply"])
def test_card_numbers_in_postbacks_and_quick_replies_are_stored_masked(
    linked, graph, client, django_capture_on_commit_callbacks, kind
):
    with django_capture_on_commit_callbacks():
        meta_posts(client, linked, (kind, "PAY:4111111111111111"))
    worker_runs()

    assert "4111111111111111" not in stored_texts()
    assert "PAY:•••• 1111" in stored_texts()
    assert len(warnings_sent(graph)) == 1


def test_the_agent_inbox_never_shows_the_full_card_number(
    linked, graph, client, sign_in, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks():
        meta_posts(
            client, linked, ("text", "I need a person: my card 4111 1111 1111 1111 was stolen")
        )
    worker_runs()
    conversation = ConversationMessage.objects.get(direction="in").conversation
    operator = StaffMembershipFactory(bank=linked.bank, role=StaffMembership.Role.OPERATOR).user
    staff = sign_in(operator)

    pages = [
        staff.get(reverse("conversation:inbox", args=[linked.bank.slug])),
        staff.get(reverse("conversation:inbox_feed", args=[linked.bank.slug])),
        staff.get(reverse("conversation:inbox_thread", args=[linked.bank.slug, conversation.pk])),
    ]

    assert all(page.status_code == 200 for page in pages)
    thread = pages[2].content.decode()
    assert "my card •••• 1111 was stolen" in thread
    for page in pages:
        body = page.content.decode()
        assert "4111 1111 1111 1111" not in body and "4111111111111111" not in body
