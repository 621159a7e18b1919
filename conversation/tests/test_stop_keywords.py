"""“stop”, “STOP”, “unsubscribe” and their equivalents: offered, confirmed, then done."""

import httpx
import pytest

from conversation import matcher
from conversation.tests.test_conversation import sent, write
from linking import tasks as linking_tasks
from linking.models import Consent, ConsentEvent
from portal.models import AuditEvent

pytestmark = pytest.mark.django_db

KEYWORDS = {
    "en": ["stop", "STOP", "Stop.", "unsubscribe", "Unsubscribe please", "stop updates"],
    "fr": ["stop", "STOP", "arrêt", "Arrêter", "désabonner", "je veux me désabonner"],
    "de": ["stopp", "STOPP", "Stop", "abmelden", "Bitte abbestellen"],
    "es": [
        "parar",
        "STOP",
        "baja",
        "Darme de baja",
        "cancelar suscripción",
        "Cancelar la suscripción",
    ],
}


@pytest.mark.parametrize(
    ("locale", "text"),
    [(locale, text) for locale, texts in KEYWORDS.items() for text in texts],
)
def test_each_stop_keyword_in_each_language_asks_to_stop(locale, text):
    assert matcher.match(text, locale=locale).intent == matcher.STOP


@pytest.mark.parametrize("locale", ["en", "fr", "de", "es"])
def test_a_keyword_of_another_language_is_understood_too(locale):
    assert matcher.match("désabonner", locale=locale).intent == matcher.STOP
    assert matcher.match("abmelden", locale=locale).intent == matcher.STOP


def test_words_that_only_contain_stop_do_not_stop():
    assert matcher.match("the bus stopped", locale="en").intent != matcher.STOP
    assert matcher.match("para mi saldo", locale="es").intent == matcher.BALANCE


QUESTIONS = {
    "en": (
        "Do you want to stop your Harbour Bank updates in Messenger?",
        ["Yes, stop updates", "No, keep them"],
    ),
    "fr": (
        "Voulez-vous arrêter vos alertes Harbour Bank dans Messenger ?",
        ["Oui, arrêter", "Non, les garder"],
    ),
    "de": (
        "Möchten Sie Ihre Benachrichtigungen von Harbour Bank in Messenger beenden?",
        ["Ja, beenden", "Nein, behalten"],
    ),
    "es": (
        "¿Desea dejar de recibir los avisos de Harbour Bank en Messenger?",
        ["Sí, detener", "No, mantener"],
    ),
}


@pytest.mark.parametrize("locale", sorted(QUESTIONS))
def test_stop_asks_for_confirmation_in_the_customers_language(linked, graph, locale):
    linked.customer.locale = locale
    linked.customer.save()

    write(linked, KEYWORDS[locale][1])  # in capitals

    (body,) = sent(graph)
    question, titles = QUESTIONS[locale]
    assert body["message"]["text"].startswith(question.replace("Harbour Bank", linked.bank.name))
    replies = body["message"]["quick_replies"]
    assert [r["title"] for r in replies] == titles
    assert all(len(r["title"]) <= 20 for r in replies)  # Messenger's limit for a title
    assert [r["payload"] for r in replies] == ["STOP_CONFIRM", "STOP_CANCEL"]
    linked.consent.refresh_from_db()
    assert linked.consent.status == Consent.Status.AUTHORISED  # nothing stops on one word


def test_the_confirmation_stops_sharing_for_the_customer_audited(linked, graph):
    linked.customer.locale = "fr"
    linked.customer.save()
    write(linked, "stop")

    write(linked, "Oui, arrêter", payload="STOP_CONFIRM")

    linked.consent.refresh_from_db()
    assert linked.consent.status == Consent.Status.REVOKED
    event = ConsentEvent.objects.get(consent=linked.consent, to_status=Consent.Status.REVOKED)
    assert event.actor == ConsentEvent.Actor.CUSTOMER
    assert "stop" in event.reason
    entry = AuditEvent.objects.get(action="consent.revoked", target_id=str(linked.consent.pk))
    assert entry.actor_type == "customer"

    # Messenger is told, and the customer hears it is done, in French.
    graph.answers = [None, httpx.Response(200, json={"result": "unlink account success"})]
    linking_tasks.unlink_in_messenger(linked.consent.pk)
    farewell = sent(graph)[-1]["message"]["text"]
    assert farewell.startswith(f"{linked.bank.name} a arrêté de vous envoyer des alertes ici")


def test_no_keeps_the_updates_and_says_so(linked, graph):
    write(linked, "unsubscribe")

    write(linked, "No, keep them", payload="STOP_CANCEL")

    linked.consent.refresh_from_db()
    assert linked.consent.status == Consent.Status.AUTHORISED
    assert sent(graph)[-1]["message"]["text"].startswith("All right, your updates continue.")


def test_a_late_confirmation_after_the_link_ended_stops_nothing_more(linked, graph):
    write(linked, "stop")
    write(linked, "Yes, stop updates", payload="STOP_CONFIRM")
    revoked = AuditEvent.objects.filter(action="consent.revoked").count()

    write(linked, "Yes, stop updates", payload="STOP_CONFIRM")  # tapped again

    assert AuditEvent.objects.filter(action="consent.revoked").count() == revoked == 1
    # No link any more: the person is offered to link again, nothing about any account.
    payload = sent(graph)[-1]["message"]["attachment"]["payload"]
    assert payload["buttons"][0]["type"] == "account_link"
