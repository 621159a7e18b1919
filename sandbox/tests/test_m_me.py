"""m.me links in the sandbox: the stand-in page that asks who opens the link, and a link
pasted into a chat; each becomes the webhook Messenger would send the bank."""

import json

import pytest

from sandbox.models import DEFAULT_FIELDS, Message, Page, User, WebhookDelivery

pytestmark = pytest.mark.django_db

PAGE_ID = "1029384756"


@pytest.fixture
def page():
    return Page.objects.create(
        page_id=PAGE_ID,
        name="Harbour Bank",
        access_token="EAAsandbox-token",
        app_secret="sandbox-secret",
        webhook_url="http://127.0.0.1:9/webhook",
        subscribed_fields=DEFAULT_FIELDS,
    )


def sent(field: str) -> list[dict]:
    return [
        item
        for hook in WebhookDelivery.objects.filter(field=field)
        for entry in json.loads(hook.body)["entry"]
        for item in entry["messaging"]
    ]


def test_the_page_subscribes_to_referrals_by_default(page):
    assert "messaging_referrals" in page.subscribed_fields


def test_the_m_me_page_asks_who_opens_the_link(client, page):
    User.objects.create(page=page, name="Ben Carter")

    response = client.get(f"/sandbox/m.me/{PAGE_ID}", {"ref": "link_abc"})

    assert response.status_code == 200
    page_text = response.content.decode()
    assert "Open as Ben Carter" in page_text
    assert "Someone new to Harbour Bank" in page_text


def test_someone_new_taps_get_started_and_the_postback_carries_the_referral(client, page):
    response = client.post(f"/sandbox/m.me/{PAGE_ID}", {"ref": "link_abc", "name": "Chloé"})

    user = User.objects.get(name="Chloé")
    assert response["Location"] == f"/sandbox/chat/{PAGE_ID}/{user.psid}/"
    (item,) = sent("messaging_postbacks")
    assert item["sender"]["id"] == user.psid
    assert item["postback"]["title"] == "Get Started"
    assert item["postback"]["referral"] == {
        "ref": "link_abc",
        "source": "SHORTLINK",
        "type": "OPEN_THREAD",
    }
    assert user.last_inbound_at is not None
    assert not sent("messaging_referrals")


def test_someone_with_a_thread_comes_back_to_it_with_a_referral(client, page):
    ben = User.objects.create(page=page, name="Ben Carter")
    Message.objects.create(page=page, user=ben, direction="in", body={"text": "hi"})

    client.post(f"/sandbox/m.me/{PAGE_ID}", {"ref": "link_abc", "psid": ben.psid})

    (item,) = sent("messaging_referrals")
    assert (item["sender"]["id"], item["referral"]["ref"]) == (ben.psid, "link_abc")
    assert not sent("messaging_postbacks")


def test_a_link_pasted_into_the_chat_opens_as_its_user(client, page):
    ben = User.objects.create(page=page, name="Ben Carter")
    Message.objects.create(page=page, user=ben, direction="in", body={"text": "hi"})

    client.post(
        f"/sandbox/chat/{PAGE_ID}/{ben.psid}/open-link",
        {"url": f"https://m.me/{PAGE_ID}?ref=link_abc"},
    )

    (item,) = sent("messaging_referrals")
    assert item["referral"]["ref"] == "link_abc"


def test_a_pasted_link_to_another_page_is_refused(client, page):
    ben = User.objects.create(page=page, name="Ben Carter")

    response = client.post(
        f"/sandbox/chat/{PAGE_ID}/{ben.psid}/open-link",
        {"url": "https://m.me/999999?ref=link_abc"},
        follow=True,
    )

    assert "Paste an m.me link to this Page" in response.content.decode()
    assert not WebhookDelivery.objects.exists()
