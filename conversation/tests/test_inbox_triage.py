"""Triage in the agent inbox: urgency first, waiting time against the bank's reply target,
the alert being answered, internal notes, canned replies, filters, and the confirmation
before replying to a customer who stopped sharing."""

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from conversation import matcher, privacy, selectors, services
from conversation.models import (
    CannedReply,
    Conversation,
    ConversationMessage,
    ConversationNote,
    FraudAlertAnswer,
    InboxSettings,
)
from conversation.tests.test_conversation import sent_text, write
from conversation.tests.test_fraud_honest_texts import posted_alert
from linking.services import consent_revoke, customer_actor
from notifications.fraud_replies import fraud_payload
from notifications.tests.factories import contact_for
from portal.models import AuditEvent, StaffMembership, TextVersion
from portal.tests.factories import BankFactory, StaffMembershipFactory

pytestmark = pytest.mark.django_db

CONFIRM = "I confirm this reply is needed although the customer stopped sharing"


@pytest.fixture
def operator(linked):
    return StaffMembershipFactory(
        bank=linked.bank, role=StaffMembership.Role.OPERATOR, user__username="marta"
    ).user


@pytest.fixture
def staff(sign_in, operator):
    return sign_in(operator)


@pytest.fixture
def admin(linked, sign_in):
    user = StaffMembershipFactory(bank=linked.bank, role=StaffMembership.Role.ADMIN).user
    return sign_in(user, http_client=Client())


@pytest.fixture
def second_admin(linked, sign_in):
    """Another admin of the bank: the four eyes that approve a draft."""
    user = StaffMembershipFactory(bank=linked.bank, role=StaffMembership.Role.ADMIN).user
    return sign_in(user, http_client=Client())


def url(name, linked, *args):
    return reverse(f"conversation:{name}", args=[linked.bank.slug, *args])


def waited(conversation, minutes):
    """The customer's messages in `conversation` were written `minutes` ago."""
    ConversationMessage.objects.filter(conversation=conversation, direction="in").update(
        created_at=timezone.now() - timedelta(minutes=minutes)
    )


def customers_in_order(staff, linked, query=""):
    rows = staff.get(url("inbox_feed", linked) + query).json()["conversations"]
    return [row["customer"] for row in rows]


def deny(linked, linked_api, graph):
    """Ana taps "No, it wasn't me" on a fraud alert she was sent."""
    alert = posted_alert(linked, linked_api, graph, callback=False)
    write(linked, "No, it wasn't me", payload=fraud_payload("FRAUD_NO", alert.pk))
    graph.sent.clear()
    return alert


# Order: urgent first, then the longest waiting.


def test_a_fraud_denial_goes_above_an_older_request_for_help(linked, linked_api, graph, staff):
    _, bruno = linked.person(name="Bruno Costa")
    write(linked, "something odd happened, talk to a human", psid=bruno.psid)
    waited(Conversation.objects.get(psid=bruno.psid), 50)
    deny(linked, linked_api, graph)

    assert customers_in_order(staff, linked) == ["Ana Souza", "Bruno Costa"]
    page = staff.get(url("inbox", linked)).content.decode()
    assert page.index("Ana Souza") < page.index("Bruno Costa")
    assert "Urgent" in page and "Denied a card payment" in page


def test_within_a_class_the_customer_waiting_longest_comes_first(linked, graph, staff):
    _, bruno = linked.person(name="Bruno Costa")
    _, carla = linked.person(name="Carla Dias")
    write(linked, "talk to a human")
    write(linked, "I lost my card", psid=bruno.psid)
    write(linked, "my card was stolen", psid=carla.psid)
    waited(Conversation.objects.get(psid=bruno.psid), 5)
    waited(Conversation.objects.get(psid=carla.psid), 30)
    waited(Conversation.objects.get(psid=linked.consent.psid), 90)

    assert customers_in_order(staff, linked) == ["Carla Dias", "Bruno Costa", "Ana Souza"]


def test_a_thanks_after_a_lost_card_keeps_the_conversation_urgent(linked, graph, staff):
    write(linked, "I lost my card")
    write(linked, "ok whatever you think is best")

    conversation = Conversation.objects.get()
    assert conversation.reason == Conversation.Reason.LOST_CARD


# Waiting time and the reply target.


def test_waiting_counts_from_the_oldest_message_no_person_answered(linked, graph, staff, operator):
    write(linked, "talk to a human")
    conversation = Conversation.objects.get()
    waited(conversation, 40)
    (row,) = staff.get(url("inbox_feed", linked)).json()["conversations"]
    assert row["waiting"] == "40 min" and row["over_target"] is True

    staff.post(url("inbox_reply", linked, conversation.pk), {"text": "Hello Ana, Marta here."})
    (row,) = staff.get(url("inbox_feed", linked)).json()["conversations"]
    assert row["waiting"] == "" and row["over_target"] is False

    ConversationMessage.objects.filter(author="agent").update(
        created_at=timezone.now() - timedelta(minutes=20)
    )
    write(linked, "still there? I need a person")
    ConversationMessage.objects.filter(direction="in", text__startswith="still").update(
        created_at=timezone.now() - timedelta(minutes=3)
    )
    (row,) = staff.get(url("inbox_feed", linked)).json()["conversations"]
    assert row["waiting"] == "3 min" and row["over_target"] is False


def test_what_the_assistant_answered_before_the_ask_is_not_waiting(linked, graph, staff):
    write(linked, "hello")
    ConversationMessage.objects.filter(direction="in").update(
        created_at=timezone.now() - timedelta(days=3)
    )
    write(linked, "talk to a human")

    (row,) = staff.get(url("inbox_feed", linked)).json()["conversations"]

    assert row["waiting"] == "0 min" and row["over_target"] is False


def test_the_banks_reply_target_decides_what_is_over_target(linked, graph, staff, admin):
    write(linked, "talk to a human")
    waited(Conversation.objects.get(), 10)
    (row,) = staff.get(url("inbox_feed", linked)).json()["conversations"]
    assert row["over_target"] is False  # the default target is 15 minutes

    response = admin.post(
        url("inbox_settings", linked), {"form": "target", "reply_target_minutes": "5"}
    )

    assert response.status_code == 302
    assert InboxSettings.objects.get(bank=linked.bank).reply_target_minutes == 5
    (row,) = staff.get(url("inbox_feed", linked)).json()["conversations"]
    assert row["over_target"] is True
    saved = AuditEvent.objects.get(action="inbox_settings.saved")
    assert saved.details["reply_target_minutes"] == [15, 5]


def test_a_reply_target_out_of_range_is_refused(linked, admin):
    response = admin.post(
        url("inbox_settings", linked), {"form": "target", "reply_target_minutes": "0"}
    )

    assert response.status_code == 400
    assert not InboxSettings.objects.exists()


def test_operators_cannot_change_the_reply_target(linked, staff):
    response = staff.post(
        url("inbox_settings", linked), {"form": "target", "reply_target_minutes": "5"}
    )

    assert response.status_code == 403
    assert not InboxSettings.objects.exists()


# Lost or stolen cards.


@pytest.mark.parametrize(
    ("locale", "text"),
    [
        ("en", "I lost my card"),
        ("en", "Help, my card was stolen!"),
        ("en", "Please block my card"),
        ("fr", "J'ai perdu ma carte"),
        ("fr", "On m'a volé ma carte, carte volée"),
        ("de", "Ich habe meine Karte verloren"),
        ("de", "Meine Karte wurde gestohlen"),
        ("es", "Perdí mi tarjeta"),
        ("es", "Me robaron la tarjeta, tarjeta robada"),
    ],
)
def test_a_lost_or_stolen_card_is_understood_in_each_language(locale, text):
    assert matcher.match(text, locale=locale).intent == matcher.LOST_CARD


@pytest.mark.parametrize(
    "text", ["my card is stuck in the machine", "what is my card balance", "stop"]
)
def test_other_messages_about_a_card_are_not_a_lost_card(text):
    assert matcher.match(text, locale="en").intent != matcher.LOST_CARD


def test_a_lost_card_asks_for_a_person_and_gives_the_banks_phone(linked, graph):
    linked.bank.support_phone = "+44 20 7946 0000"
    linked.bank.save()

    write(linked, "I lost my card, please help")

    conversation = Conversation.objects.get()
    assert conversation.needs_person and conversation.reason == "lost_card"
    assert sent_text(graph) == (
        f"A person from {linked.bank.name} will answer here as soon as possible to help with "
        f"your card. To block it right away, call {linked.bank.name} on +44 20 7946 0000."
    )


@pytest.mark.parametrize(
    ("locale", "text", "expected"),
    [
        ("fr", "J'ai perdu ma carte", "Pour la bloquer tout de suite, appelez"),
        ("de", "Karte gestohlen", "Um sie sofort zu sperren, rufen Sie"),
        ("es", "Perdí mi tarjeta", "Para bloquearla ahora mismo, llame a"),
    ],
)
def test_a_lost_card_is_answered_in_the_customers_language(linked, graph, locale, text, expected):
    linked.bank.support_phone = "+33 1 23 45 67 89"
    linked.bank.save()
    linked.customer.locale = locale
    linked.customer.save()

    write(linked, text)

    assert expected in sent_text(graph) and "+33 1 23 45 67 89" in sent_text(graph)
    assert Conversation.objects.get().reason == "lost_card"


def test_it_wasnt_me_block_my_card_answers_the_waiting_fraud_alert(linked, linked_api, graph):
    alert = posted_alert(linked, linked_api, graph, callback=False)

    write(linked, "That wasn't me! Please block my card")

    assert FraudAlertAnswer.objects.get(notification=alert).answer == "denied"
    assert Conversation.objects.get().reason == "fraud_denied"
    assert "fraud team" in sent_text(graph)


def test_it_wasnt_me_block_my_card_without_an_alert_is_a_lost_card(linked, graph):
    write(linked, "That wasn't me! Please block my card")

    assert not FraudAlertAnswer.objects.exists()
    assert Conversation.objects.get().reason == "lost_card"


def test_without_a_phone_the_lost_card_answer_promises_only_a_person(linked, graph):
    linked.bank.support_phone = ""
    linked.bank.save()

    write(linked, "block my card")

    assert sent_text(graph) == (
        f"A person from {linked.bank.name} will answer here as soon as possible to help with "
        "your card."
    )


# The alert being answered.


def test_the_thread_shows_the_fraud_alert_the_customer_denied(linked, linked_api, graph, staff):
    alert = deny(linked, linked_api, graph)
    alert.refresh_from_db()

    body = staff.get(url("inbox_thread", linked, Conversation.objects.get().pk)).content.decode()

    assert "The alert the customer answered" in body
    assert "Fraud alert" in body and "No, it wasn" in body
    assert alert.text and alert.text.split("\n")[0][:30] in body.replace("&#x27;", "'")
    assert f"{alert.sent_at:%Y}" in body


def test_the_alert_in_the_thread_shows_card_numbers_masked(linked, linked_api, graph, staff):
    alert = deny(linked, linked_api, graph)
    type(alert).objects.filter(pk=alert.pk).update(text="Was this you? 4111 1111 1111 1111 at Shop")

    body = staff.get(url("inbox_thread", linked, Conversation.objects.get().pk)).content.decode()

    assert "4111 1111 1111 1111" not in body and "Was this you?" in body


# Internal notes.


def test_a_note_is_kept_for_staff_and_never_sent(linked, graph, staff, operator):
    write(linked, "talk to a human")
    graph.sent.clear()
    conversation = Conversation.objects.get()
    outbound = ConversationMessage.objects.filter(direction="out").count()

    response = staff.post(
        url("inbox_note", linked, conversation.pk), {"note": "Called her back, no answer."}
    )

    assert response.status_code == 302
    note = ConversationNote.objects.get()
    assert note.written_by == operator and note.conversation == conversation
    assert ConversationMessage.objects.filter(direction="out").count() == outbound
    assert graph.sent == []
    body = staff.get(url("inbox_thread", linked, conversation.pk)).content.decode()
    assert "Internal note by marta" in body and "not sent to the customer" in body
    audit = AuditEvent.objects.get(action="conversation.note_added")
    assert "Called her back" not in str(audit.details)


def test_a_note_with_a_card_number_is_refused(linked, graph, staff):
    write(linked, "talk to a human")
    conversation = Conversation.objects.get()

    response = staff.post(
        url("inbox_note", linked, conversation.pk), {"note": "Card 4111 1111 1111 1111"}
    )

    assert response.status_code == 400 and not ConversationNote.objects.exists()


def test_auditors_cannot_write_notes(linked, graph, sign_in):
    write(linked, "talk to a human")
    auditor = StaffMembershipFactory(bank=linked.bank, role=StaffMembership.Role.AUDITOR).user
    client = sign_in(auditor)

    response = client.post(
        url("inbox_note", linked, Conversation.objects.get().pk), {"note": "hello"}
    )

    assert response.status_code == 403 and not ConversationNote.objects.exists()


# Canned replies.


def canned_draft(linked) -> TextVersion:
    return TextVersion.objects.get(bank=linked.bank, subject="canned_reply", state="draft")


def test_an_admin_drafts_a_canned_reply_another_approves_and_an_operator_uses_it(
    linked, graph, admin, second_admin, staff
):
    write(linked, "talk to a human")
    conversation = Conversation.objects.get()

    response = admin.post(
        url("inbox_settings", linked),
        {
            "form": "canned",
            "locale": "en",
            "title": "Card blocked",
            "body": "We have blocked your card.",
        },
    )

    assert response.status_code == 302
    # A draft: nothing is offered to agents until a second admin approves it.
    assert not CannedReply.objects.exists()
    thread = staff.get(url("inbox_thread", linked, conversation.pk)).content.decode()
    assert "Card blocked" not in thread
    draft = canned_draft(linked)
    assert "Card blocked" in admin.get(url("inbox_settings", linked)).content.decode()
    own = admin.post(url("canned_reply_version_approve", linked, draft.pk))
    assert own.status_code == 302 and not CannedReply.objects.exists()  # not their own

    approved = second_admin.post(url("canned_reply_version_approve", linked, draft.pk))

    assert approved.status_code == 302
    canned = CannedReply.objects.get()
    assert AuditEvent.objects.filter(action="text_version.approved").count() == 1
    page = staff.get(url("inbox_thread", linked, conversation.pk) + f"?canned={canned.pk}")
    body = page.content.decode()
    assert "Card blocked (en)" in body
    assert "We have blocked your card.</textarea>" in body


def test_an_operator_cannot_approve_a_canned_reply(linked, admin, staff):
    admin.post(
        url("inbox_settings", linked),
        {"form": "canned", "locale": "en", "title": "Hi", "body": "Hello"},
    )

    response = staff.post(url("canned_reply_version_approve", linked, canned_draft(linked).pk))

    assert response.status_code == 403 and not CannedReply.objects.exists()


def test_operators_cannot_write_canned_replies(linked, staff):
    response = staff.post(
        url("inbox_settings", linked),
        {"form": "canned", "locale": "en", "title": "Hi", "body": "Hello"},
    )

    assert response.status_code == 403 and not CannedReply.objects.exists()


def test_a_canned_reply_with_a_card_number_is_refused(linked, admin):
    response = admin.post(
        url("inbox_settings", linked),
        {"form": "canned", "locale": "en", "title": "Bad", "body": "Card 4111-1111-1111-1111"},
    )

    assert response.status_code == 400 and not CannedReply.objects.exists()


def test_canned_replies_in_the_customers_language_come_first(linked):
    for locale, title in (("de", "Karte"), ("en", "Card"), ("fr", "Carte")):
        CannedReply.objects.create(bank=linked.bank, locale=locale, title=title, body=title)

    found = list(selectors.canned_replies_list(bank=linked.bank, locale="fr_FR"))

    assert [c.title for c in found] == ["Carte", "Karte", "Card"]


def test_another_banks_staff_can_neither_see_nor_use_a_canned_reply(linked, graph, sign_in):
    write(linked, "talk to a human")
    mine = CannedReply.objects.create(
        bank=linked.bank, locale="en", title="Harbour only", body="Secret wording."
    )
    other_bank = BankFactory(slug="other")
    other_admin = StaffMembershipFactory(bank=other_bank, role="admin").user
    client = sign_in(other_admin)

    edit = client.get(reverse("conversation:canned_reply_edit", args=["other", mine.pk]))
    delete = client.post(reverse("conversation:canned_reply_delete", args=["other", mine.pk]))
    listing = client.get(reverse("conversation:inbox_settings", args=["other"]))

    assert edit.status_code == 404 and delete.status_code == 404
    assert "Harbour only" not in listing.content.decode()
    assert CannedReply.objects.filter(pk=mine.pk).exists()


def test_a_canned_reply_of_another_bank_does_not_fill_the_reply_box(linked, graph, staff):
    write(linked, "talk to a human")
    theirs = CannedReply.objects.create(
        bank=BankFactory(slug="other"), locale="en", title="Theirs", body="Other bank wording."
    )

    body = staff.get(
        url("inbox_thread", linked, Conversation.objects.get().pk) + f"?canned={theirs.pk}"
    ).content.decode()

    assert "Other bank wording." not in body and "Theirs" not in body


def test_an_edit_waits_for_approval_and_a_delete_is_at_once(linked, admin, second_admin):
    canned = CannedReply.objects.create(bank=linked.bank, locale="en", title="Old", body="Old")

    edited = admin.post(
        url("canned_reply_edit", linked, canned.pk),
        {"locale": "en", "title": "Old", "body": "New text"},
    )
    canned.refresh_from_db()

    assert edited.status_code == 302 and canned.body == "Old"  # agents still get the old text
    second_admin.post(url("canned_reply_version_approve", linked, canned_draft(linked).pk))
    canned.refresh_from_db()
    assert canned.body == "New text"
    renamed = admin.post(
        url("canned_reply_edit", linked, canned.pk),
        {"locale": "en", "title": "New", "body": "New text"},
    )
    assert renamed.status_code == 400 and "keeps its title" in renamed.content.decode()
    deleted = admin.post(url("canned_reply_delete", linked, canned.pk))
    assert deleted.status_code == 302 and not CannedReply.objects.exists()
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"text_version.drafted", "text_version.approved", "canned_reply.deleted"} <= actions


# Filters.


def test_the_inbox_filters_by_assignment_and_reason(linked, graph, staff, operator):
    _, bruno = linked.person(name="Bruno Costa")
    write(linked, "talk to a human")
    write(linked, "I lost my card", psid=bruno.psid)
    ana = Conversation.objects.get(psid=linked.consent.psid)
    staff.post(url("inbox_assign", linked, ana.pk), {"assignee": "me"})

    assert customers_in_order(staff, linked, "?who=mine") == ["Ana Souza"]
    assert customers_in_order(staff, linked, "?who=unassigned") == ["Bruno Costa"]
    assert customers_in_order(staff, linked, "?reason=lost_card") == ["Bruno Costa"]
    assert sorted(customers_in_order(staff, linked, "?who=nonsense")) == [
        "Ana Souza",
        "Bruno Costa",
    ]
    page = staff.get(url("inbox", linked) + "?who=mine").content.decode()
    assert "Ana Souza" in page and "Bruno Costa" not in page
    assert "feed.json?who=mine" in page  # the live updates keep the filter


# A customer who stopped sharing.


@pytest.fixture
def stopped(linked, graph):
    """Ana asked for a person, then stopped sharing."""
    write(linked, "Can I talk to a person please?")
    consent_revoke(
        consent=linked.consent,
        actor=customer_actor(linked.customer),
        reason="Stopped sharing from the dashboard",
    )
    contact_for(linked.consent)
    graph.sent.clear()
    return Conversation.objects.get()


def test_the_thread_warns_that_the_customer_stopped_sharing(linked, stopped, staff):
    body = staff.get(url("inbox_thread", linked, stopped.pk)).content.decode()

    assert "The customer stopped sharing." in body and CONFIRM in body
    (row,) = staff.get(url("inbox_feed", linked)).json()["conversations"]
    assert row["consent_ended"] is True
    assert "Stopped sharing" in staff.get(url("inbox", linked)).content.decode()


def test_a_reply_to_a_customer_who_stopped_sharing_needs_the_confirmation(linked, stopped, staff):
    before = ConversationMessage.objects.filter(direction="out").count()

    response = staff.post(
        url("inbox_reply", linked, stopped.pk), {"text": "I've blocked the card ending 1053"}
    )

    assert response.status_code == 400
    assert "Tick “I confirm this reply is needed" in response.content.decode()
    assert ConversationMessage.objects.filter(direction="out").count() == before
    assert not AuditEvent.objects.filter(action="conversation.agent_replied").exists()


def test_with_the_confirmation_the_reply_is_queued_and_the_audit_says_so(linked, stopped, staff):
    response = staff.post(
        url("inbox_reply", linked, stopped.pk),
        {"text": "We are here if you need us.", "confirm_consent_ended": "on"},
    )

    assert response.status_code == 302
    assert ConversationMessage.objects.filter(author="agent").count() == 1
    replied = AuditEvent.objects.get(action="conversation.agent_replied")
    assert replied.details["consent_ended_confirmed"] == linked.consent.pk


def test_a_customer_who_shares_needs_no_confirmation(linked, graph, staff):
    write(linked, "Can I talk to a person please?")
    conversation = Conversation.objects.get()

    body = staff.get(url("inbox_thread", linked, conversation.pk)).content.decode()
    response = staff.post(url("inbox_reply", linked, conversation.pk), {"text": "Hello Ana"})

    assert "The customer stopped sharing." not in body and CONFIRM not in body
    (row,) = staff.get(url("inbox_feed", linked)).json()["conversations"]
    assert row["consent_ended"] is False
    assert response.status_code == 302


# The dashboard.


def test_the_dashboard_tile_counts_the_inbox(linked, linked_api, graph):
    _, bruno = linked.person(name="Bruno Costa")
    write(linked, "talk to a person", psid=bruno.psid)
    waited(Conversation.objects.get(psid=bruno.psid), 60)
    deny(linked, linked_api, graph)

    panel = selectors.inbox_panel(linked.bank)

    assert panel is not None and panel.value == 2
    assert "1 urgent" in panel.caption and "1 past your 15-minute reply target" in panel.caption


def test_the_dashboard_shows_the_inbox_tile(linked, graph, sign_in, operator):
    write(linked, "talk to a person")
    client = sign_in(operator)

    body = client.get(
        reverse("portal:dashboard", kwargs={"bank": linked.bank.slug})
    ).content.decode()

    assert "Agent inbox" in body and "waiting for a person" in body


# Privacy.


def test_erasing_a_customer_erases_the_notes_about_them(linked, graph, staff):
    write(linked, "talk to a human")
    conversation = Conversation.objects.get()
    staff.post(url("inbox_note", linked, conversation.pk), {"note": "Ana's husband called."})

    services.customer_conversations_erase(linked.customer)

    assert ConversationNote.objects.get().text == ""


def test_notes_past_the_banks_retention_are_blanked(linked, graph, staff):
    write(linked, "talk to a human")
    conversation = Conversation.objects.get()
    staff.post(url("inbox_note", linked, conversation.pk), {"note": "Old note."})
    staff.post(url("inbox_note", linked, conversation.pk), {"note": "New note."})
    ConversationNote.objects.filter(text="Old note.").update(
        created_at=timezone.now() - timedelta(days=400)
    )

    services.message_bodies_purge(linked.bank, timezone.now() - timedelta(days=365))

    assert sorted(ConversationNote.objects.values_list("text", flat=True)) == ["", "New note."]


def test_a_customers_data_export_includes_the_notes_about_them(linked, graph, staff):
    write(linked, "talk to a human")
    conversation = Conversation.objects.get()
    staff.post(url("inbox_note", linked, conversation.pk), {"note": "Prefers a call back."})

    (exported,) = privacy.customer_export(linked.customer)["conversations"]

    assert [n["text"] for n in exported["staff_notes"]] == ["Prefers a call back."]
