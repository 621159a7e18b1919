"""An `account_linking_token` completes one Log In: replays through the pages are refused."""

from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from django.core.cache import cache
from django.test import Client

from linking.models import AuthorizationCode, Consent
from linking.tests.factories import AccountFactory, IntegrationFactory

pytestmark = pytest.mark.django_db

TOKEN = "ALT-once-0123456789abcdefghijklmnopqrstuvwxyz"
REDIRECT = (
    f"https://www.facebook.com/messenger_platform/account_linking?account_linking_token={TOKEN}"
)
USED = "This Log In was already used"


@pytest.fixture(autouse=True)
def _fresh_throttle():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def harbour():
    integration = IntegrationFactory(bank__slug="harbour", bank__name="Harbour Bank")
    AccountFactory(
        customer__bank=integration.bank, customer__directory_username="ana", external_id="chk"
    )
    AccountFactory(
        customer__bank=integration.bank, customer__directory_username="bob", external_id="sav"
    )
    return integration


def link_url(token=TOKEN, redirect_uri=REDIRECT) -> str:
    return "/link/harbour/?" + urlencode(
        {"account_linking_token": token, "redirect_uri": redirect_uri}
    )


def open_and_sign_in(client: Client, username: str, url: str | None = None):
    """Messenger opens the Log In URL; the person signs in and sees the consent screen."""
    opened = client.get(url or link_url())
    assert opened.status_code == 302, opened.content.decode()
    client.post("/link/harbour/login", {"username": username, "password": "open sesame 42"})
    return client.get("/link/harbour/consent")


def allow(client: Client, username: str):
    account = Consent._meta.get_field("accounts").related_model.objects.get(
        customer__directory_username=username
    )
    return client.post(
        "/link/harbour/consent",
        {"decision": "allow", "accounts": [account.pk], "scopes": ["balances"]},
    )


def test_the_link_url_replayed_after_linking_is_refused(harbour):
    victim = Client()
    open_and_sign_in(victim, "ana")
    linked = allow(victim, "ana")
    assert linked.status_code == 302
    assert "authorization_code" in parse_qs(urlsplit(linked.url).query)

    attacker = Client()
    replay = attacker.get(link_url())

    assert replay.status_code == 410
    assert USED in replay.content.decode()
    assert attacker.get("/link/harbour/consent").status_code == 400  # no flow was started
    assert Consent.objects.count() == AuthorizationCode.objects.count() == 1


def test_a_second_flow_with_the_same_token_cannot_complete(harbour):
    first, second = Client(), Client()
    open_and_sign_in(first, "ana")
    open_and_sign_in(second, "bob")

    done = allow(first, "ana")
    again = allow(second, "bob")

    assert done.status_code == 302 and "authorization_code=" in done.url
    assert again.status_code == 410
    assert USED in again.content.decode()
    assert "authorization_code" not in again.content.decode()
    assert list(Consent.objects.values_list("customer__directory_username", flat=True)) == ["ana"]
    assert AuthorizationCode.objects.count() == 1


def test_a_token_used_to_deny_cannot_then_link(harbour):
    first, second = Client(), Client()
    open_and_sign_in(first, "ana")
    open_and_sign_in(second, "ana")

    denied = first.post("/link/harbour/consent", {"decision": "deny"})
    again = allow(second, "ana")

    assert denied.status_code == 302 and "authorization_code" not in denied.url
    assert again.status_code == 410
    assert not AuthorizationCode.objects.exists()
    assert list(Consent.objects.values_list("status", flat=True)) == [Consent.Status.REJECTED]


def test_a_fresh_token_links_again(harbour):
    client = Client()
    open_and_sign_in(client, "ana")
    allow(client, "ana")
    other = "ALT-second-0123456789abcdefghijklmnopqrstuvwxyz"

    open_and_sign_in(client, "ana", url=link_url(other, REDIRECT.replace(TOKEN, other)))
    linked = allow(client, "ana")

    assert linked.status_code == 302 and "authorization_code=" in linked.url
    assert AuthorizationCode.objects.count() == 2


def test_only_a_keyed_hash_of_the_token_is_stored(harbour):
    """Neither the token nor a plain hash of it, which anyone holding the token could match."""
    import hashlib

    from django.db import connection

    plain_hash = hashlib.sha256(TOKEN.encode()).hexdigest()

    client = Client()
    open_and_sign_in(client, "ana")
    allow(client, "ana")

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND data_type IN ('text', 'character varying')"
        )
        columns = cursor.fetchall()
        for table, column in columns:
            cursor.execute(
                f'SELECT count(*) FROM "{table}" WHERE "{column}" LIKE %s OR "{column}" = %s',
                [f"%{TOKEN}%", plain_hash],
            )
            assert cursor.fetchone()[0] == 0, f"{table}.{column} holds the token"
