"""The customer pages and bankside's own Messenger texts in the customer's language."""

import re
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core.cache import cache
from django.utils import timezone

from linking import messages, services
from linking.models import Consent
from linking.tests.factories import AccountFactory, IntegrationFactory
from portal.languages import format_date

pytestmark = pytest.mark.django_db

REDIRECT = "https://www.facebook.com/messenger_platform/account_linking/?account_linking_token=t"


def spaces(text: str) -> str:
    return text.replace("\u202f", " ").replace("\xa0", " ")


@pytest.fixture(autouse=True)
def _fresh_throttle():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def account():
    integration = IntegrationFactory(bank__slug="harbour", bank__name="Harbour Bank")
    return AccountFactory(
        customer__bank=integration.bank, customer__directory_username="ana", customer__locale="fr"
    )


def start(client, **headers):
    response = client.get(
        "/link/harbour/",
        {"account_linking_token": "tok-fr", "redirect_uri": REDIRECT},
        **headers,
    )
    assert response.status_code == 302
    return client.get(response.url, **headers)


def sign_in(client, password="open sesame 42", **headers):
    return client.post(
        "/link/harbour/login", {"username": "ana", "password": password}, follow=True, **headers
    )


def test_a_french_customers_consent_page_is_in_french_with_french_dates(client, account):
    start(client)

    page = sign_in(client)

    html = page.content.decode()
    assert page["Content-Language"] == "fr"
    assert '<html lang="fr">' in html
    assert "Associer Harbour Bank à Messenger ?" in html
    assert "Quels comptes ?" in html and "Quelles alertes ?" in html
    assert "Compte courant" in html and "Soldes" in html
    assert ">Autoriser</button>" in html and ">Refuser</button>" in html
    assert "pour vous envoyer en temps réel, dans Messenger, des alertes" in html
    until = format_date(timezone.now() + timedelta(days=90), "fr")  # "6 mars 2027"
    assert re.search(r"\d+ \w+ 20\d\d", until)
    assert f"90 jours, jusqu'au {until}." in html.replace("&#x27;", "'")
    assert "Retour à Messenger" in html


def test_a_refused_choice_is_explained_in_french(client, account):
    start(client)
    sign_in(client)

    page = client.post("/link/harbour/consent", {"decision": "allow", "scopes": ["balances"]})

    assert page.status_code == 400
    assert "Choisissez au moins un compte à partager." in page.content.decode()


def test_allowing_records_the_purpose_in_the_words_the_customer_read(client, account):
    start(client)
    sign_in(client)

    response = client.post(
        "/link/harbour/consent",
        {"decision": "allow", "accounts": [account.pk], "scopes": ["balances"]},
    )

    assert response.status_code == 302
    assert parse_qs(urlsplit(response.url).query)["authorization_code"]
    consent = Consent.objects.get(customer=account.customer)
    assert consent.purpose.startswith("pour vous envoyer en temps réel")


def test_before_sign_in_the_page_follows_the_browsers_language(client, account):
    page = start(client, HTTP_ACCEPT_LANGUAGE="de-DE,de;q=0.9,en;q=0.5")

    html = page.content.decode()
    assert "Bei Harbour Bank anmelden" in html
    assert "Benutzername" in html and "Passwort" in html
    wrong = sign_in(client, password="guess", HTTP_ACCEPT_LANGUAGE="de-DE,de;q=0.9")
    assert "Benutzername und Passwort passen nicht zusammen." in wrong.content.decode()


def test_without_a_known_language_the_page_is_in_the_banks_default(client, account):
    account.bank.default_locale = "es"
    account.bank.save()

    page = start(client, HTTP_ACCEPT_LANGUAGE="ja-JP")

    assert "Inicie sesión en Harbour Bank" in page.content.decode()


def test_a_customer_whose_language_bankside_lacks_gets_the_banks_default(client, account):
    customer = account.customer
    customer.locale = "it"
    customer.save()
    account.bank.default_locale = "de"
    account.bank.save()
    start(client)

    page = sign_in(client, HTTP_ACCEPT_LANGUAGE="it-IT")

    assert "Harbour Bank mit Messenger verknüpfen?" in page.content.decode()


def link(account) -> Consent:
    granted = services.consent_authorise(
        customer=account.customer,
        accounts=[account],
        scopes=["balances", "fraud_alerts"],
        duration_days=90,
        purpose="x",
        page_id=account.bank.integration.page_id,
        account_linking_token="tok-linked",
    )
    return services.link_bind(
        bank=account.bank,
        page_id=account.bank.integration.page_id,
        psid="777",
        authorization_code=granted.authorization_code,
    )


def test_the_link_confirmation_in_messenger_is_in_french(account):
    consent = link(account)

    text = spaces(messages.link_confirmation(consent))

    until = format_date(timezone.localtime(consent.expires_at), "fr")
    assert text.startswith("Votre compte Harbour Bank est associé. Nous vous enverrons : ")
    assert "soldes, alertes de fraude, pour Everyday account •••• 4821" in text
    assert f"jusqu'au {until}." in text
    assert "écrivez « stop »" in text


def test_the_expiry_reminder_and_the_farewell_follow_the_customers_language(account):
    customer = account.customer
    customer.locale = "es_MX"
    customer.save()
    consent = link(account)

    reminder = messages.expiry_reminder(consent)
    farewell = messages.link_ended(consent)

    assert reminder.startswith("Sus avisos de Harbour Bank en Messenger terminan el ")
    assert format_date(timezone.localtime(consent.expires_at), "es_MX") in reminder
    assert farewell.startswith("Harbour Bank ha dejado de enviarle avisos aquí")


def test_the_dashboard_is_in_the_customers_language(client, account):
    customer = account.customer
    customer.locale = "de"
    customer.save()
    link(account)
    sign_in(client)

    html = client.get("/my/harbour/").content.decode()

    assert "Was Sie mit Messenger teilen" in html
    assert "Kontostände" in html and "Freigabe beenden" in html
    assert "Einwilligungsnachweis ansehen" in html


def test_staff_pages_stay_in_english_whatever_the_browser_says(client, account):
    response = client.get("/staff/login/", HTTP_ACCEPT_LANGUAGE="fr-FR")

    assert response.get("Content-Language") in (None, "en")


def test_the_german_link_confirmation_keeps_its_nouns_capitalised(account):
    customer = account.customer
    customer.locale = "de"
    customer.save()
    consent = link(account)

    text = messages.link_confirmation(consent)

    assert text.startswith("Sie sind mit Harbour Bank verknüpft. Wir senden Ihnen ")
    assert "Kontostände, Betrugswarnungen für Everyday account •••• 4821 bis zum " in text
    assert format_date(timezone.localtime(consent.expires_at), "de") in text  # "6. März 2027"
