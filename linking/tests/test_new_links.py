"""Who receives the updates, every new link announced to the customer's other chats with a
"That wasn't me" that only those chats can use, and the bank told of every link that
begins or ends (`link.created`, `link.ended`).

Messenger is faked at the client boundary (`FakeMeta`); the database, the webhook view,
the services and the callback delivery are the real ones.
"""

import hashlib
import hmac
import json
import time
from datetime import timedelta

import httpx
import pytest
from django.core.cache import cache
from django.utils import timezone
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

import messenger
from conversation import callbacks
from conversation.models import BankCallback
from linking import services
from linking.models import Consent, ConsentEvent, LinkMessage, PlatformUnlink
from linking.tests.factories import AccountFactory, IntegrationFactory
from notifications.models import Notification
from notifications.tests.factories import EventFactory
from portal.audit import Actor
from portal.languages import format_datetime
from portal.models import AuditEvent
from portal.services.integration import signing_secret_new

pytestmark = pytest.mark.django_db

CALLBACK_URL = "https://core.harbour.example/messenger/callbacks"
ANA_PSID = "1000000000000001"
ATTACKER_PSID = "1000000000000002"
STRANGER_PSID = "1000000000000003"
REDIRECT = "https://www.facebook.com/messenger_platform/account_linking?account_linking_token=T"
Kind = LinkMessage.Kind


class FakeMeta:
    """The Graph API at the client boundary: PSID look-ups, profiles, sends and unlinks.

    `people` maps a linking token to (PSID, first name, last name); `profile_error` makes
    the User Profile API refuse as it does without permission; `lookup_error` makes the
    PSID look-up answer Meta's 10303; `silent` lets every call run out of time."""

    def __init__(self) -> None:
        self.people: dict[str, tuple[str, str, str]] = {}
        self.profile_error = False
        self.lookup_error = False
        self.silent = False
        self.sent: list[dict] = []
        self.unlinked: list[str] = []
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.silent:
            raise httpx.ReadTimeout("no answer in time", request=request)
        path = request.url.path.split("/", 2)[2]
        if request.method == "GET" and path == "me":
            token = request.url.params.get("account_linking_token", "")
            if self.lookup_error or token not in self.people:
                return error(10303, "Invalid account_linking_token")
            return httpx.Response(200, json={"recipient": self.people[token][0], "id": "page"})
        if request.method == "GET":
            if self.profile_error:
                return error(200, "(#200) Missing permission")
            for psid, first, last in self.people.values():
                if psid == path:
                    return httpx.Response(
                        200, json={"first_name": first, "last_name": last, "id": psid}
                    )
            return error(100, "Unsupported get request", subcode=33)
        body = json.loads(request.content)
        if path == "me/unlink_accounts":
            self.unlinked.append(body["psid"])
            return httpx.Response(200, json={"result": "unlink account success"})
        self.sent.append(body)
        return httpx.Response(
            200, json={"recipient_id": body["recipient"]["id"], "message_id": f"m_{len(self.sent)}"}
        )

    def to(self, psid: str) -> list[dict]:
        return [b["message"] for b in self.sent if b["recipient"]["id"] == psid]


def error(code: int, message: str, subcode: int | None = None) -> httpx.Response:
    body = {"message": message, "type": "OAuthException", "code": code}
    if subcode is not None:
        body["error_subcode"] = subcode
    return httpx.Response(400, json={"error": body})


@pytest.fixture(autouse=True)
def _fresh_throttle():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def meta(monkeypatch):
    fake = FakeMeta()
    client = messenger.GraphClient(
        "https://graph.test", "v27.0", transport=httpx.MockTransport(fake)
    )
    monkeypatch.setattr(messenger, "get_client", lambda: client)
    yield fake
    client.close()


@pytest.fixture
def integration():
    integration = IntegrationFactory(bank__slug="harbour", bank__name="Harbour Bank")
    integration.callback_url = CALLBACK_URL
    integration.callback_signing_secret = signing_secret_new()
    integration.save()
    return integration


@pytest.fixture
def account(integration):
    return AccountFactory(
        customer__bank=integration.bank,
        customer__directory_username="ana",
        customer__external_id="cu-ana",
        customer__name="Ana Souza",
    )


def link(account, psid: str, *, token: str, name: str = "") -> Consent:
    """Log In, Allow and Messenger's `account_linking` event, through the services."""
    integration = account.bank.integration
    granted = services.consent_authorise(
        customer=account.customer,
        accounts=[account],
        scopes=["balances", "transactions"],
        duration_days=90,
        purpose="to send you updates",
        page_id=integration.page_id,
        account_linking_token=token,
        messenger_name=name,
    )
    return services.link_bind(
        bank=account.bank,
        page_id=integration.page_id,
        psid=psid,
        authorization_code=granted.authorization_code,
    )


def webhook(client, integration, psid: str, event: dict):
    body = {
        "object": "page",
        "entry": [
            {
                "id": integration.page_id,
                "time": 1,
                "messaging": [
                    {
                        "sender": {"id": psid},
                        "recipient": {"id": integration.page_id},
                        "timestamp": int(time.time() * 1000),
                        **event,
                    }
                ],
            }
        ],
    }
    raw = json.dumps(body).encode()
    signature = hmac.new(integration.app_secret.encode(), raw, hashlib.sha256).hexdigest()
    response = client.post(
        "/webhooks/messenger/harbour/",
        data=raw,
        content_type="application/json",
        headers={"X-Hub-Signature-256": "sha256=" + signature},
    )
    assert response.status_code == 200
    return response


def tap_not_me(client, integration, psid: str, payload: str, mid: str = "m_tap"):
    return webhook(
        client,
        integration,
        psid,
        {"postback": {"mid": mid, "title": "That wasn't me", "payload": payload}},
    )


def send_owed_messages() -> None:
    for message_id in services.link_messages_due(now=timezone.now() + timedelta(minutes=5)):
        services.link_message_attempt(
            actor=services.MESSAGE_SENDER, message_id=message_id, now=timezone.now()
        )


def link_callbacks(type_: str) -> list[dict]:
    return [
        json.loads(c.body)
        for c in BankCallback.objects.filter(type=type_).order_by("created_at", "id")
    ]


# Who receives it: the consent screen


def open_consent_screen(client, meta, token="T"):
    client.get(f"/link/harbour/?account_linking_token={token}&redirect_uri={REDIRECT}")
    client.post("/link/harbour/login", {"username": "ana", "password": "open sesame 42"})
    return client.get("/link/harbour/consent")


def test_the_consent_screen_names_the_messenger_account_from_the_psid_and_its_profile(
    client, meta, account
):
    meta.people["T"] = (ANA_PSID, "Ana", "Souza")

    page = open_consent_screen(client, meta).content.decode()

    assert "Updates will go to the Messenger account of <strong>Ana S.</strong> If" in page
    lookup, profile = meta.requests
    assert lookup.url.params["account_linking_token"] == "T"
    assert profile.url.path == f"/v27.0/{ANA_PSID}"
    # Neither call may keep the customer waiting more than about two seconds.
    assert lookup.extensions["timeout"]["read"] <= 1.0
    assert profile.extensions["timeout"]["read"] <= 2.0


def test_the_name_shown_is_kept_with_the_link_minimised(client, meta, account):
    meta.people["T"] = (ANA_PSID, "Ana", "Souza")
    open_consent_screen(client, meta)

    response = client.post(
        "/link/harbour/consent",
        {"decision": "allow", "accounts": [account.pk], "scopes": ["balances"]},
    )

    assert response.status_code == 302
    consent = Consent.objects.get(customer=account.customer)
    assert consent.messenger_name == "Ana S."
    # Asked once per Log In: the allow did not ask Meta again.
    assert len(meta.requests) == 2


def test_a_first_name_alone_is_shown_as_a_sentence_of_its_own(client, meta, account):
    meta.people["T"] = (ANA_PSID, "Ana", "")

    page = open_consent_screen(client, meta).content.decode()

    assert "Updates will go to the Messenger account of <strong>Ana</strong>. If" in page


@pytest.mark.parametrize("failure", ["lookup", "profile", "timeout"])
def test_where_meta_cannot_say_who_the_screen_says_so_plainly(client, meta, account, failure):
    meta.people["T"] = (ANA_PSID, "Ana", "Souza")
    if failure == "lookup":
        meta.lookup_error = True
    elif failure == "profile":
        meta.profile_error = True
    else:
        meta.silent = True

    response = open_consent_screen(client, meta)

    page = response.content.decode()
    assert response.status_code == 200
    assert "We could not confirm which Messenger account will receive the updates" in page
    assert "Updates will go to" not in page


# Every new link is announced


def test_a_first_link_announces_nothing(meta, account):
    link(account, ANA_PSID, token="t1", name="Ana S.")
    send_owed_messages()

    assert not LinkMessage.objects.filter(kind=Kind.NEW_LINK_NOTICE).exists()
    (confirmation,) = meta.to(ANA_PSID)
    assert "You're linked" in confirmation["attachment"]["payload"]["text"]


def test_a_second_link_is_announced_in_the_first_chat_with_that_wasnt_me(meta, account):
    link(account, ANA_PSID, token="t1", name="Ana S.")
    send_owed_messages()
    new = link(account, ATTACKER_PSID, token="t2", name="Max M.")
    send_owed_messages()

    notice = meta.to(ANA_PSID)[-1]["attachment"]["payload"]
    assert "another Messenger account (Max M.) was linked" in notice["text"]
    assert (
        format_datetime(new.linked_at, "en", tzinfo=timezone.get_current_timezone())
        in (notice["text"])
    )
    (button,) = notice["buttons"]
    row = LinkMessage.objects.get(kind=Kind.NEW_LINK_NOTICE)
    assert button == {
        "type": "postback",
        "title": "That wasn't me",
        "payload": f"LINK_NOT_ME:{row.pk}",
    }
    assert row.state == LinkMessage.State.SENT and row.about == new
    # The new chat gets its confirmation, never the notice about itself.
    assert not any("LINK_NOT_ME" in str(m) for m in meta.to(ATTACKER_PSID))


def test_that_wasnt_me_ends_the_new_link_audits_tells_messenger_and_the_bank(
    client, meta, account, integration, django_capture_on_commit_callbacks
):
    first = link(account, ANA_PSID, token="t1", name="Ana S.")
    send_owed_messages()
    new = link(account, ATTACKER_PSID, token="t2", name="Max M.")
    send_owed_messages()
    notice = LinkMessage.objects.get(kind=Kind.NEW_LINK_NOTICE)

    with django_capture_on_commit_callbacks(execute=False):
        tap_not_me(client, integration, ANA_PSID, f"LINK_NOT_ME:{notice.pk}")

    new.refresh_from_db()
    first.refresh_from_db()
    assert new.status == Consent.Status.REVOKED
    assert first.status == Consent.Status.AUTHORISED
    last = new.events.order_by("occurred_at", "id").last()
    assert last.actor == ConsentEvent.Actor.CUSTOMER and "That wasn't me" in last.reason
    assert AuditEvent.objects.filter(action="link.reported_not_me", target_id=str(new.pk)).exists()
    # Messenger is told as for every ended link: the unlink row, then the call.
    assert PlatformUnlink.objects.get(consent=new).state == PlatformUnlink.State.PENDING
    services.platform_unlink_attempt(actor=services.UNLINKER, consent_id=new.pk)
    assert meta.unlinked == [ATTACKER_PSID]
    (ended,) = link_callbacks("link.ended")
    assert ended["data"]["link_id"] == str(new.pk)
    assert ended["data"]["reason"] == "not_made_by_customer"
    assert ended["data"]["customer_id"] == "cu-ana"
    assert ended["data"]["messenger_name"] == "Max M."
    send_owed_messages()
    answer = meta.to(ANA_PSID)[-1]["text"]
    assert "no longer receives anything from Harbour Bank" in answer


def test_a_second_tap_of_that_wasnt_me_changes_nothing_more(client, meta, account, integration):
    link(account, ANA_PSID, token="t1")
    send_owed_messages()
    link(account, ATTACKER_PSID, token="t2")
    send_owed_messages()
    notice = LinkMessage.objects.get(kind=Kind.NEW_LINK_NOTICE)
    tap_not_me(client, integration, ANA_PSID, f"LINK_NOT_ME:{notice.pk}", mid="m_1")

    tap_not_me(client, integration, ANA_PSID, f"LINK_NOT_ME:{notice.pk}", mid="m_2")

    assert len(link_callbacks("link.ended")) == 1
    assert LinkMessage.objects.filter(kind=Kind.NOT_ME_ANSWER).count() == 1


@pytest.mark.parametrize("who", ["attacker", "stranger"])
def test_a_forged_that_wasnt_me_from_another_messenger_user_ends_nothing(
    client, meta, account, integration, who
):
    """The attacker linked Ben's account from their own Messenger and knows (or guesses)
    the payload: posted from their chat, or from a third person's, it ends no link."""
    first = link(account, ANA_PSID, token="t1")
    send_owed_messages()
    new = link(account, ATTACKER_PSID, token="t2")
    send_owed_messages()
    notice = LinkMessage.objects.get(kind=Kind.NEW_LINK_NOTICE)
    sender = ATTACKER_PSID if who == "attacker" else STRANGER_PSID
    sent_before = len(meta.sent)

    tap_not_me(client, integration, sender, f"LINK_NOT_ME:{notice.pk}")
    send_owed_messages()

    new.refresh_from_db()
    first.refresh_from_db()
    assert new.status == first.status == Consent.Status.AUTHORISED
    assert link_callbacks("link.ended") == []
    assert len(meta.sent) == sent_before and meta.unlinked == []
    assert AuditEvent.objects.filter(action="link.not_me_refused").count() == 1


def test_a_that_wasnt_me_for_an_unknown_notice_ends_nothing(client, meta, account, integration):
    link(account, ANA_PSID, token="t1")
    new = link(account, ATTACKER_PSID, token="t2")
    send_owed_messages()

    for payload in ("LINK_NOT_ME:999999", "LINK_NOT_ME:abc", "LINK_NOT_ME:"):
        tap_not_me(client, integration, ANA_PSID, payload, mid=payload)

    new.refresh_from_db()
    assert new.status == Consent.Status.AUTHORISED


# The bank hears of every link: link.created and link.ended


def deliver(callback: BankCallback) -> httpx.Request:
    seen: list[httpx.Request] = []

    def bank(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    state = callbacks.callback_deliver(callback_id=callback.pk, transport=httpx.MockTransport(bank))
    assert state == BankCallback.State.DELIVERED
    (request,) = seen
    return request


def test_link_created_reaches_the_bank_signed_the_standard_webhooks_way(meta, account, integration):
    link(account, ANA_PSID, token="t1", name="Ana S.")
    consent = link(account, ATTACKER_PSID, token="t2", name="Max M.")

    callback = BankCallback.objects.filter(type="link.created").order_by("id").last()
    request = deliver(callback)

    payload = Webhook(integration.callback_signing_secret).verify(
        request.content, dict(request.headers)
    )
    assert payload["type"] == "link.created"
    assert payload["data"] == {
        "link_id": str(consent.pk),
        "customer_id": "cu-ana",
        "messenger_name": "Max M.",
        "linked_at": consent.linked_at.isoformat().replace("+00:00", "Z"),
        "active_links": 2,
        "accounts": [account.external_id],
        "scopes": ["balances", "transactions"],
    }
    with pytest.raises(WebhookVerificationError):
        Webhook(signing_secret_new()).verify(request.content, dict(request.headers))


def end_by_customer(consent):
    services.consent_revoke(
        consent=consent, actor=services.customer_actor(consent.customer), reason="Stopped"
    )


def end_by_staff(consent):
    services.consent_revoke(consent=consent, actor=Actor("staff", "1", "operator"), reason="x")


def end_in_messenger(consent):
    services.link_unlinked_by_platform(
        bank=consent.bank, page_id=consent.page_id, psid=consent.psid
    )


def end_by_expiry(consent):
    Consent.objects.filter(pk=consent.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    services.consents_expire_due()


@pytest.mark.parametrize(
    ("end", "reason"),
    [
        (end_by_customer, "customer_stopped"),
        (end_by_staff, "bank_staff"),
        (end_in_messenger, "unlinked_in_messenger"),
        (end_by_expiry, "expired"),
    ],
)
def test_every_end_of_a_link_is_a_signed_link_ended(meta, account, integration, end, reason):
    consent = link(account, ANA_PSID, token="t1", name="Ana S.")

    end(consent)

    callback = BankCallback.objects.get(type="link.ended")
    request = deliver(callback)
    payload = Webhook(integration.callback_signing_secret).verify(
        request.content, dict(request.headers)
    )
    consent.refresh_from_db()
    assert payload["data"]["link_id"] == str(consent.pk)
    assert payload["data"]["reason"] == reason
    assert payload["data"]["ended_at"] == consent.ended_at.isoformat().replace("+00:00", "Z")


def test_the_same_person_linking_again_ends_their_old_link_as_replaced(meta, account):
    old = link(account, ANA_PSID, token="t1")

    new = link(account, ANA_PSID, token="t2")

    (ended,) = link_callbacks("link.ended")
    assert ended["data"]["link_id"] == str(old.pk) and ended["data"]["reason"] == "replaced"
    assert [c["data"]["link_id"] for c in link_callbacks("link.created")] == [
        str(old.pk),
        str(new.pk),
    ]
    assert not LinkMessage.objects.filter(kind=Kind.NEW_LINK_NOTICE).exists()


def test_a_consent_never_bound_to_messenger_ends_without_link_ended(meta, account):
    granted = services.consent_authorise(
        customer=account.customer,
        accounts=[account],
        scopes=["balances"],
        duration_days=90,
        purpose="x",
        page_id=account.bank.integration.page_id,
        account_linking_token="t1",
    )

    end_by_customer(granted.consent)

    assert link_callbacks("link.ended") == []


def test_link_callbacks_are_listed_and_resendable_for_staff(meta, account, integration):
    consent = link(account, ANA_PSID, token="t1")
    end_by_customer(consent)
    ended = BankCallback.objects.get(type="link.ended")
    BankCallback.objects.filter(pk=ended.pk).update(state=BankCallback.State.DEAD)

    callbacks.callback_retry_now(actor=Actor("staff", "1", "operator"), callback=ended)

    ended.refresh_from_db()
    assert ended.state == BankCallback.State.PENDING
    assert deliver(ended).headers["webhook-id"] == ended.webhook_id


# The dashboard tells links apart


def test_the_dashboard_tells_links_apart_by_name_link_time_and_last_update(client, meta, account):
    first = link(account, ANA_PSID, token="t1", name="Ana S.")
    second = link(account, ATTACKER_PSID, token="t2")
    Consent.objects.filter(pk=first.pk).update(linked_at=timezone.now() - timedelta(days=30))
    first.refresh_from_db()
    event = EventFactory(account=account)
    sent_at = timezone.now() - timedelta(hours=2)
    Notification.objects.create(
        bank=account.bank,
        event=event,
        consent=first,
        account=account,
        event_type=event.type,
        page_id=first.page_id,
        psid=first.psid,
        sequence=1,
        locale="en",
        state=Notification.State.SENT,
        sent_at=sent_at,
    )
    client.post("/link/harbour/login", {"username": "ana", "password": "open sesame 42"})

    page = client.get("/my/harbour/").content.decode()

    first_card = page.split(f'data-consent="{first.pk}"')[1].split("</section>")[0]
    second_card = page.split(f'data-consent="{second.pk}"')[1].split("</section>")[0]
    assert "Messenger · Ana S." in first_card
    assert "Messenger · name not known" in second_card
    zone = timezone.get_current_timezone()
    assert format_datetime(first.linked_at, "en", tzinfo=zone) in first_card
    assert format_datetime(second.linked_at, "en", tzinfo=zone) in second_card
    assert format_datetime(sent_at, "en", tzinfo=zone) in first_card
    assert "None yet" in second_card


def test_an_erasure_ends_the_link_as_erased_and_leaves_no_messenger_name_behind(
    meta, account, integration
):
    consent = link(account, ANA_PSID, token="t1", name="Ana S.")
    assert link_callbacks("link.created")[0]["data"]["messenger_name"] == "Ana S."

    services.subject_erase(
        customer=account.customer, actor=Actor("staff", "1", "admin"), reason="Asked by letter"
    )

    (ended,) = link_callbacks("link.ended")
    assert ended["data"]["reason"] == "erased"
    assert ended["data"]["messenger_name"] is None
    assert link_callbacks("link.created")[0]["data"]["messenger_name"] is None
    consent.refresh_from_db()
    assert consent.messenger_name == ""
    assert "Ana S." not in "".join(BankCallback.objects.values_list("body", flat=True))


def test_an_ended_link_is_listed_with_its_messenger_name(client, meta, account):
    link(account, ANA_PSID, token="t1", name="Ana S.")
    new = link(account, ATTACKER_PSID, token="t2", name="Max M.")
    end_by_customer(new)
    client.post("/link/harbour/login", {"username": "ana", "password": "open sesame 42"})

    page = client.get("/my/harbour/").content.decode()

    ended = page.split("<h2>Ended</h2>")[1]
    assert "Max M.: Revoked on" in ended
    assert "Ana S." not in ended
