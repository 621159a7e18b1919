import json
from decimal import Decimal

import pytest

from messenger import builders as b


def test_text_message_shape():
    assert b.text_message("PSID1", "Balance: €120.00") == {
        "recipient": {"id": "PSID1"},
        "messaging_type": "RESPONSE",
        "message": {"text": "Balance: €120.00"},
    }


def test_text_message_with_every_option():
    body = b.text_message(
        "PSID1",
        "Was this you?",
        quick_replies=[b.quick_reply("Yes", "FRAUD_NO"), {"title": "No", "payload": "FRAUD_YES"}],
        messaging_type="UPDATE",
        notification_type="SILENT_PUSH",
        metadata="alert-77",
    )
    assert body == {
        "recipient": {"id": "PSID1"},
        "messaging_type": "UPDATE",
        "notification_type": "SILENT_PUSH",
        "message": {
            "text": "Was this you?",
            "quick_replies": [
                {"content_type": "text", "title": "Yes", "payload": "FRAUD_NO"},
                {"content_type": "text", "title": "No", "payload": "FRAUD_YES"},
            ],
            "metadata": "alert-77",
        },
    }
    json.dumps(body)


@pytest.mark.parametrize("text", ["", "   ", "x" * 2000, None])
def test_text_must_be_non_empty_and_under_2000(text):
    with pytest.raises(ValueError, match="text"):
        b.text_message("PSID1", text)


def test_text_of_1999_characters_is_accepted():
    assert len(b.text_message("PSID1", "x" * 1999)["message"]["text"]) == 1999


def test_metadata_must_be_under_1000():
    b.text_message("PSID1", "hi", metadata="m" * 999)
    with pytest.raises(ValueError, match="metadata"):
        b.text_message("PSID1", "hi", metadata="m" * 1000)


def test_at_most_13_quick_replies():
    replies = [b.quick_reply(f"r{i}", f"P{i}") for i in range(14)]
    assert (
        len(b.text_message("PSID1", "hi", quick_replies=replies[:13])["message"]["quick_replies"])
        == 13
    )
    with pytest.raises(ValueError, match="1 to 13"):
        b.text_message("PSID1", "hi", quick_replies=replies)


@pytest.mark.parametrize(
    ("title", "payload"), [("x" * 21, "P"), ("", "P"), ("ok", "p" * 1001), ("ok", "")]
)
def test_quick_reply_limits(title, payload):
    with pytest.raises(ValueError):
        b.quick_reply(title, payload)
    with pytest.raises(ValueError):
        b.text_message("PSID1", "hi", quick_replies=[{"title": title, "payload": payload}])


def test_quick_reply_at_limits_is_accepted():
    assert b.quick_reply("x" * 20, "p" * 1000)["title"] == "x" * 20


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"messaging_type": "NONSENSE"}, "messaging_type"),
        ({"notification_type": "LOUD"}, "notification_type"),
        ({"messaging_type": "MESSAGE_TAG"}, "needs a tag"),
        ({"tag": "HUMAN_AGENT"}, "only allowed"),
    ],
)
def test_invalid_envelope_options(kwargs, message):
    with pytest.raises(ValueError, match=message):
        b.text_message("PSID1", "hi", **kwargs)


@pytest.mark.parametrize("psid", ["", " 123", None, 123])
def test_psid_must_be_a_clean_string(psid):
    with pytest.raises(ValueError, match="psid"):
        b.text_message(psid, "hi")


@pytest.mark.parametrize(
    "tag", ["ACCOUNT_UPDATE", "CONFIRMED_EVENT_UPDATE", "POST_PURCHASE_UPDATE"]
)
def test_tags_retired_in_2026_are_refused_with_reason(tag):
    with pytest.raises(ValueError, match=rf"{tag}.*27 April 2026.*utility"):
        b.text_message("PSID1", "Fraud alert", messaging_type="MESSAGE_TAG", tag=tag)


@pytest.mark.parametrize("tag", ["PAYMENT_UPDATE", "PERSONAL_FINANCE_UPDATE", "SHIPPING_UPDATE"])
def test_tags_retired_in_2020_are_refused_with_reason(tag):
    with pytest.raises(ValueError, match="4 March 2020"):
        b.check_tag(tag)


def test_unknown_tag_is_refused():
    with pytest.raises(ValueError, match="only HUMAN_AGENT"):
        b.check_tag("MADE_UP")


def test_human_agent_message():
    assert b.human_agent_message("PSID1", "Ana from the card team about dispute #881.") == {
        "recipient": {"id": "PSID1"},
        "messaging_type": "MESSAGE_TAG",
        "tag": "HUMAN_AGENT",
        "message": {"text": "Ana from the card team about dispute #881."},
    }


def test_human_agent_message_with_persona():
    assert b.human_agent_message("PSID1", "hello", persona_id="555")["persona_id"] == "555"


def test_button_template_with_login_and_logout():
    body = b.button_template(
        "PSID1",
        "Link your Riverside account",
        [b.login_button("https://bank.example/link/riverside/"), b.logout_button()],
    )
    assert body == {
        "recipient": {"id": "PSID1"},
        "messaging_type": "RESPONSE",
        "message": {
            "attachment": {
                "type": "template",
                "payload": {
                    "template_type": "button",
                    "text": "Link your Riverside account",
                    "buttons": [
                        {"type": "account_link", "url": "https://bank.example/link/riverside/"},
                        {"type": "account_unlink"},
                    ],
                },
            }
        },
    }


def test_postback_and_url_buttons():
    assert b.postback_button("Balance", "BALANCE") == {
        "type": "postback",
        "title": "Balance",
        "payload": "BALANCE",
    }
    assert b.url_button("Open app", "https://bank.example/app") == {
        "type": "web_url",
        "title": "Open app",
        "url": "https://bank.example/app",
    }


@pytest.mark.parametrize(
    "url",
    [
        "http://bank.example/link",
        "http://localhost.bank.example/link",
        "https:///nohost",
        "javascript:alert(1)",
        "",
        None,
    ],
)
def test_login_button_requires_https(url):
    with pytest.raises(ValueError, match="https"):
        b.login_button(url)


@pytest.mark.parametrize("count", [0, 4])
def test_button_template_needs_one_to_three_buttons(count):
    buttons = [b.postback_button(f"B{i}", f"P{i}") for i in range(count)]
    with pytest.raises(ValueError, match="1 to 3"):
        b.button_template("PSID1", "Pick one", buttons)


def test_button_template_text_limit_is_640():
    b.button_template("PSID1", "x" * 640, [b.logout_button()])
    with pytest.raises(ValueError, match="640"):
        b.button_template("PSID1", "x" * 641, [b.logout_button()])


def test_button_title_limit():
    with pytest.raises(ValueError, match="title"):
        b.postback_button("x" * 21, "P")


def test_receipt_template_shape():
    body = b.receipt_template(
        "PSID1",
        recipient_name="Jane Doe",
        order_number="R-1001",
        currency="EUR",
        payment_method="Visa ending 4242",
        total_cost=Decimal("56.14"),
        subtotal=Decimal("50.00"),
        total_tax=Decimal("6.14"),
        timestamp=1767225600,
        elements=[b.receipt_element("Coffee beans", Decimal("25.00"), quantity=2)],
    )
    payload = body["message"]["attachment"]["payload"]
    assert body["messaging_type"] == "UPDATE"
    assert payload == {
        "template_type": "receipt",
        "recipient_name": "Jane Doe",
        "order_number": "R-1001",
        "currency": "EUR",
        "payment_method": "Visa ending 4242",
        "summary": {"subtotal": 50.0, "total_tax": 6.14, "total_cost": 56.14},
        "elements": [{"title": "Coffee beans", "price": 25.0, "quantity": 2}],
        "timestamp": "1767225600",
    }
    assert '"total_cost": 56.14' in json.dumps(body)


def test_receipt_allows_at_most_100_elements():
    elements = [b.receipt_element(f"item {i}", 1) for i in range(101)]
    kwargs = {
        "recipient_name": "Jane",
        "order_number": "R-1",
        "currency": "EUR",
        "payment_method": "Visa 4242",
        "total_cost": 101,
    }
    assert (
        len(
            b.receipt_template("PSID1", elements=elements[:100], **kwargs)["message"]["attachment"][
                "payload"
            ]["elements"]
        )
        == 100
    )
    with pytest.raises(ValueError, match="100"):
        b.receipt_template("PSID1", elements=elements, **kwargs)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("currency", "euro"),
        ("total_cost", -1),
        ("total_cost", "12.00"),
        ("total_cost", float("nan")),
        ("total_cost", Decimal("Infinity")),
        ("total_cost", True),
        ("order_number", ""),
    ],
)
def test_receipt_rejects_bad_values(field, value):
    kwargs = {
        "recipient_name": "Jane",
        "order_number": "R-1",
        "currency": "EUR",
        "payment_method": "Visa 4242",
        "total_cost": 10,
    }
    kwargs[field] = value
    with pytest.raises(ValueError, match=field):
        b.receipt_template("PSID1", **kwargs)


def test_utility_template_message_shape():
    assert b.utility_template_message("PSID1", "bank_card_alert", "en", ["€120.00"]) == {
        "recipient": {"id": "PSID1"},
        "messaging_type": "UTILITY",
        "message": {
            "template": {
                "name": "bank_card_alert",
                "language": {"code": "en"},
                "components": [
                    {"type": "body", "parameters": [{"type": "text", "text": "€120.00"}]}
                ],
            }
        },
    }


def test_utility_template_without_params_has_no_components():
    template = b.utility_template_message("PSID1", "statement_ready", "en_US")["message"][
        "template"
    ]
    assert "components" not in template


@pytest.mark.parametrize(
    ("name", "language", "params"),
    [("Bank Alert", "en", []), ("alert", "english", []), ("alert", "en", [""])],
)
def test_utility_template_validation(name, language, params):
    with pytest.raises(ValueError):
        b.utility_template_message("PSID1", name, language, params)


def test_sender_action():
    assert b.sender_action("PSID1", "mark_seen") == {
        "recipient": {"id": "PSID1"},
        "sender_action": "mark_seen",
    }
    with pytest.raises(ValueError, match="sender action"):
        b.sender_action("PSID1", "dance")


def test_plain_http_login_url_is_allowed_for_loopback_development_only():
    from messenger import builders

    assert builders.login_button("http://127.0.0.1:8000/link/harbour/")["url"].startswith("http://")
    with pytest.raises(ValueError):
        builders.login_button("http://10.0.0.5/link/harbour/")


def test_every_message_builder_puts_metadata_on_the_message():
    url = "https://bank.example/authorize"
    bodies = [
        b.human_agent_message("PSID1", "Ana from the card team.", metadata="bankside:r:7"),
        b.button_template("PSID1", "Link your account", [b.login_button(url)], metadata="m"),
        b.utility_template_message("PSID1", "bank_card_alert", "en", ["€1"], metadata="x"),
    ]

    assert [body["message"]["metadata"] for body in bodies] == ["bankside:r:7", "m", "x"]
    with pytest.raises(ValueError, match="metadata must be under 1000"):
        b.utility_template_message("PSID1", "bank_card_alert", "en", metadata="m" * 1000)
