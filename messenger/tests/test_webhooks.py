import hmac
import json

import pytest

from messenger.webhooks import (
    AccountLinkingEvent,
    DeliveryEvent,
    EchoEvent,
    MessageEvent,
    OptinEvent,
    PostbackEvent,
    ReactionEvent,
    ReadEvent,
    Referral,
    ReferralEvent,
    TemplateStatusEvent,
    UnknownEvent,
    WebhookPayloadError,
    opens_window,
    parse_envelope,
    verify_handshake,
    verify_request_signature,
    verify_signature,
    verify_signature_sha1,
)

SECRET = "app-secret-0123"
PAGE = "1029384756"
PSID = "2468013579112233"


def sign(raw: bytes, secret: str = SECRET, algorithm: str = "sha256") -> str:
    return f"{algorithm}=" + hmac.new(secret.encode(), raw, algorithm).hexdigest()


def item(ts: int, sender: str = PSID, **kind) -> dict:
    return {"sender": {"id": sender}, "recipient": {"id": PAGE}, "timestamp": ts, **kind}


def envelope(*entries: dict) -> bytes:
    return json.dumps({"object": "page", "entry": list(entries)}).encode()


def entry(*messaging: dict, page: str = PAGE, time: int = 1767225600123, **extra) -> dict:
    return {"id": page, "time": time, "messaging": list(messaging), **extra}


# Signatures


def test_valid_sha256_signature_is_accepted():
    raw = b'{"object":"page","entry":[]}'
    assert verify_signature(raw, sign(raw), SECRET) is True


def test_signature_is_over_the_escaped_unicode_bytes_as_received():
    escaped = b'{"text":"\\u00e4"}'
    utf8 = '{"text":"ä"}'.encode()
    assert json.loads(escaped) == json.loads(utf8)
    header = sign(escaped)
    assert sign(utf8) != header
    assert verify_signature(escaped, header, SECRET) is True
    assert verify_signature(utf8, header, SECRET) is False


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "sha256=",
        "sha256",
        "sha1=" + "0" * 40,
        "sha256=" + "0" * 64,
        "sha256=not-hex-äö",
        "md5=abc",
    ],
)
def test_bad_signature_headers_are_rejected(header):
    assert verify_signature(b"{}", header, SECRET) is False


def test_signature_with_wrong_secret_or_tampered_body_is_rejected():
    raw = b'{"object":"page"}'
    assert verify_signature(raw, sign(raw, "other-secret"), SECRET) is False
    assert verify_signature(raw + b" ", sign(raw), SECRET) is False


def test_signature_header_hex_case_does_not_matter():
    raw = b"{}"
    name, digest = sign(raw).split("=")
    assert verify_signature(raw, f"{name.upper()}={digest.upper()}", SECRET) is True


def test_empty_app_secret_never_verifies():
    raw = b"{}"
    assert verify_signature(raw, sign(raw, ""), "") is False


def test_signature_refuses_decoded_text_body():
    with pytest.raises(TypeError):
        verify_signature("{}", sign(b"{}"), SECRET)


def test_sha1_is_a_separate_opt_in():
    raw = b'{"object":"page"}'
    sha1_header = sign(raw, algorithm="sha1")
    assert verify_signature_sha1(raw, sha1_header, SECRET) is True
    assert verify_signature(raw, sha1_header, SECRET) is False
    assert verify_request_signature(raw, {"X-Hub-Signature": sha1_header}, SECRET) is False
    assert (
        verify_request_signature(raw, {"x-hub-signature": sha1_header}, SECRET, allow_sha1=True)
        is True
    )


def test_request_signature_prefers_sha256_and_cannot_be_downgraded():
    raw = b'{"object":"page"}'
    good_sha1 = sign(raw, algorithm="sha1")
    headers = {"X-Hub-Signature-256": "sha256=" + "0" * 64, "X-Hub-Signature": good_sha1}
    assert verify_request_signature(raw, headers, SECRET, allow_sha1=True) is False
    assert verify_request_signature(raw, {"x-hub-signature-256": sign(raw)}, SECRET) is True


# Handshake


def test_handshake_returns_challenge():
    params = {"hub.mode": "subscribe", "hub.verify_token": "tok", "hub.challenge": "1158201444"}
    assert verify_handshake(params, "tok") == "1158201444"


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"hub.mode": "subscribe", "hub.verify_token": "wrong", "hub.challenge": "1"}, "tok"),
        ({"hub.mode": "unsubscribe", "hub.verify_token": "tok", "hub.challenge": "1"}, "tok"),
        ({"hub.mode": "subscribe", "hub.verify_token": "tok"}, "tok"),
        ({"hub.mode": "subscribe", "hub.challenge": "1"}, "tok"),
        ({"hub.mode": "subscribe", "hub.verify_token": "", "hub.challenge": "1"}, ""),
        ({"hub.mode": "subscribe", "hub.verify_token": "tøk", "hub.challenge": "1"}, "tok"),
        ({}, "tok"),
    ],
)
def test_handshake_refusals(params, expected):
    assert verify_handshake(params, expected) is None


def test_handshake_accepts_list_valued_params():
    params = {"hub.mode": ["subscribe"], "hub.verify_token": ["tok"], "hub.challenge": ["42"]}
    assert verify_handshake(params, "tok") == "42"


# Envelope parsing


def test_documented_example_parses_into_message_and_delivery():
    body = envelope(
        entry(
            item(
                1767225600000,
                message={"mid": "m_abc", "text": "Balance", "quick_reply": {"payload": "BAL"}},
            ),
            item(1767225600050, delivery={"mids": ["m_out1"], "watermark": 1767225600040}),
        )
    )
    message, delivery = parse_envelope(body)
    assert message == MessageEvent(
        page_id=PAGE,
        sender_id=PSID,
        recipient_id=PAGE,
        timestamp=1767225600000,
        raw={},
        mid="m_abc",
        text="Balance",
        quick_reply_payload="BAL",
    )
    assert message.raw["message"]["mid"] == "m_abc"
    assert delivery == DeliveryEvent(
        page_id=PAGE,
        sender_id=PSID,
        recipient_id=PAGE,
        timestamp=1767225600050,
        raw={},
        mids=("m_out1",),
        watermark=1767225600040,
    )


def test_batched_entries_and_items_are_all_kept_and_sorted_by_timestamp():
    body = envelope(
        entry(
            item(300, message={"mid": "m3", "text": "third"}),
            item(100, message={"mid": "m1", "text": "first"}),
        ),
        entry(
            item(
                200,
                sender="2468013579445566",
                read={"watermark": 150},
                recipient={"id": "1029384757"},
            ),
            item(
                50,
                sender="2468013579445566",
                postback={"title": "Start", "payload": "GET_STARTED", "mid": "m0"},
            ),
            page="1029384757",
        ),
    )
    events = parse_envelope(body)
    assert [e.timestamp for e in events] == [50, 100, 200, 300]
    assert [type(e) for e in events] == [PostbackEvent, MessageEvent, ReadEvent, MessageEvent]
    assert [e.page_id for e in events] == ["1029384757", PAGE, "1029384757", PAGE]
    postback = events[0]
    assert (postback.title, postback.payload, postback.mid) == ("Start", "GET_STARTED", "m0")
    assert events[2].watermark == 150


def test_an_m_me_link_into_an_existing_thread_is_a_referral_event():
    referral = {"ref": "link_abc", "source": "SHORTLINK", "type": "OPEN_THREAD"}

    (event,) = parse_envelope(envelope(entry(item(1, referral=referral))))

    assert isinstance(event, ReferralEvent)
    assert (event.sender_id, event.page_id) == (PSID, PAGE)
    assert event.referral == Referral(ref="link_abc", source="SHORTLINK", type="OPEN_THREAD")


def test_get_started_from_an_m_me_link_carries_the_referral_on_the_postback():
    postback = {
        "title": "Get Started",
        "payload": "GET_STARTED",
        "mid": "m0",
        "referral": {"ref": "link_abc", "source": "SHORT-URL", "type": "OPEN_THREAD"},
    }

    (event,) = parse_envelope(envelope(entry(item(1, postback=postback))))

    assert isinstance(event, PostbackEvent)
    assert event.referral == Referral(ref="link_abc", source="SHORT-URL", type="OPEN_THREAD")


def test_a_referral_without_its_source_is_read_as_people_in_europe_send_it():
    (event,) = parse_envelope(envelope(entry(item(1, referral={"ref": "link_abc"}))))

    assert isinstance(event, ReferralEvent)
    assert event.referral == Referral(ref="link_abc", source=None, type=None)


def test_a_postback_without_a_referral_has_none():
    (event,) = parse_envelope(envelope(entry(item(1, postback={"payload": "BAL"}))))

    assert event.referral is None


def test_a_referral_that_is_not_an_object_is_an_unreadable_event():
    (event,) = parse_envelope(envelope(entry(item(1, referral="link_abc"))))

    assert isinstance(event, UnknownEvent)
    assert event.error


def test_account_linking_events():
    body = envelope(
        entry(
            item(1, account_linking={"status": "linked", "authorization_code": "bank-opaque-123"}),
            item(2, account_linking={"status": "unlinked"}),
        )
    )
    linked, unlinked = parse_envelope(body)
    assert isinstance(linked, AccountLinkingEvent)
    assert (linked.status, linked.authorization_code) == ("linked", "bank-opaque-123")
    assert (unlinked.status, unlinked.authorization_code) == ("unlinked", None)


def test_echo_is_its_own_event_with_app_id():
    echo = item(
        5,
        sender=PAGE,
        message={"mid": "m_echo", "text": "sent", "is_echo": True, "app_id": 1517776481860111},
    )
    echo["recipient"] = {"id": PSID}
    (event,) = parse_envelope(envelope(entry(echo)))
    assert isinstance(event, EchoEvent)
    assert (event.mid, event.app_id, event.sender_id, event.recipient_id) == (
        "m_echo",
        "1517776481860111",
        PAGE,
        PSID,
    )


def test_message_attachments():
    message = {
        "mid": "m_img",
        "attachments": [{"type": "image", "payload": {"url": "https://cdn.example/a.jpg"}}],
    }
    (event,) = parse_envelope(envelope(entry(item(1, message=message))))
    assert event.text is None
    assert [(a.type, a.url) for a in event.attachments] == [("image", "https://cdn.example/a.jpg")]


def test_optin_with_user_ref_only():
    optin = {
        "sender": {"user_ref": "UREF"},
        "recipient": {"id": PAGE},
        "timestamp": 7,
        "optin": {"ref": "signup", "user_ref": "UREF"},
    }
    (event,) = parse_envelope(envelope(entry(optin)))
    assert isinstance(event, OptinEvent)
    assert (event.sender_id, event.user_ref, event.ref) == (None, "UREF", "signup")


def test_standby_items_are_parsed_and_flagged():
    body = envelope(
        {"id": PAGE, "time": 1, "standby": [item(9, message={"mid": "m_sb", "text": "hi"})]}
    )
    (event,) = parse_envelope(body)
    assert isinstance(event, MessageEvent)
    assert event.standby is True


def test_unknown_kinds_are_kept_not_dropped():
    body = envelope(entry(item(4, message_edit={"mid": "m1", "text": "edited", "num_edit": 1})))
    (event,) = parse_envelope(body)
    assert isinstance(event, UnknownEvent)
    assert event.kind == "message_edit"
    assert event.error is None
    assert event.sender_id == PSID
    assert event.raw["message_edit"]["text"] == "edited"


def test_a_reaction_is_its_own_event():
    body = envelope(
        entry(item(4, reaction={"mid": "m1", "action": "react", "reaction": "love", "emoji": "❤"}))
    )
    (event,) = parse_envelope(body)
    assert isinstance(event, ReactionEvent)
    assert (event.sender_id, event.mid, event.action, event.reaction, event.emoji) == (
        PSID,
        "m1",
        "react",
        "love",
        "❤",
    )


def test_an_m_me_referral_into_an_existing_thread_is_its_own_event():
    referral = {"ref": "inv_abc", "source": "SHORTLINK", "type": "OPEN_THREAD"}
    (event,) = parse_envelope(envelope(entry(item(4, referral=referral))))
    assert isinstance(event, ReferralEvent)
    assert event.sender_id == PSID
    assert event.referral == Referral(ref="inv_abc", source="SHORTLINK", type="OPEN_THREAD")


def test_a_referral_without_a_source_is_read():
    """Meta leaves `source` out for people in Europe and Japan (messenger-platform.md §1a)."""
    (event,) = parse_envelope(envelope(entry(item(4, referral={"ref": "r1"}))))
    assert isinstance(event, ReferralEvent)
    assert (event.referral.ref, event.referral.source) == ("r1", None)


@pytest.mark.parametrize(
    ("kind", "content", "opens"),
    [
        ("message", {"mid": "m1", "text": "hi"}, True),
        ("postback", {"title": "Get Started", "payload": "GET_STARTED"}, True),
        ("referral", {"ref": "r1", "source": "SHORTLINK", "type": "OPEN_THREAD"}, True),
        ("reaction", {"mid": "m1", "action": "react", "reaction": "like"}, True),
        ("optin", {"type": "notification_messages", "payload": "p"}, True),
        ("delivery", {"mids": ["m1"], "watermark": 3}, False),
        ("read", {"watermark": 3}, False),
        ("message", {"mid": "m2", "is_echo": True, "app_id": 42, "text": "sent"}, False),
        ("message_edit", {"mid": "m1", "text": "x"}, False),
    ],
)
def test_what_opens_the_24_hour_window_is_what_meta_counts(kind, content, opens):
    (event,) = parse_envelope(envelope(entry(item(4, **{kind: content}))))
    assert opens_window(event) is opens


def test_an_opt_in_by_user_ref_alone_opens_no_window():
    optin = {
        "sender": {"user_ref": "UREF"},
        "recipient": {"id": PAGE},
        "timestamp": 7,
        "optin": {"ref": "signup", "user_ref": "UREF"},
    }
    (event,) = parse_envelope(envelope(entry(optin)))
    assert opens_window(event) is False


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (
            {"recipient": {"id": PAGE}, "timestamp": 1, "message": {"mid": "m", "text": "x"}},
            "sender",
        ),
        (item(1, message={"text": "no mid"}), "mid"),
        (item(1, message="just a string"), "not an object"),
        (item(1, delivery={"mids": ["m"]}), "watermark"),
        (item(1, read={"watermark": "soon"}), "watermark"),
        (item(1, account_linking={"status": "maybe"}), "status"),
        ({"sender": {"id": PSID}, "recipient": {"id": PAGE}, "message": {"mid": "m"}}, "timestamp"),
        (item(1, message={"mid": "m", "attachments": [{"payload": {}}]}), "attachment"),
    ],
)
def test_malformed_items_become_unknown_without_losing_the_batch(bad, reason):
    good = item(2, message={"mid": "m_ok", "text": "fine"})
    events = parse_envelope(envelope(entry(bad, good)))
    assert len(events) == 2
    unknown = next(e for e in events if isinstance(e, UnknownEvent))
    assert reason in unknown.error
    assert unknown.raw == bad
    assert any(isinstance(e, MessageEvent) and e.mid == "m_ok" for e in events)


BAD_SENDER = "sender.id is not 1 to 32 digits"
TEXT = {"mid": "m", "text": "x"}


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (item(10**30, message=TEXT), "timestamp out of range"),
        (item(-(10**30), message=TEXT), "timestamp out of range"),
        (item(-1, message=TEXT), "timestamp out of range"),
        (item(1, sender="1" * 33, message=TEXT), BAD_SENDER),
        (item(1, sender="55\x005", message=TEXT), BAD_SENDER),
        (item(1, sender="PSID", message=TEXT), BAD_SENDER),
        (item(1, sender="١٢٣", message=TEXT), BAD_SENDER),
        (item(1, sender=10**40, message=TEXT), BAD_SENDER),
        (item(1, sender=True, message=TEXT), "sender"),
        (item(1, message={"mid": "m", "text": "hi\x00there"}), "NUL"),
        (item(1, message={"mid": "m\x00", "text": "x"}), "NUL"),
        (item(1, postback={"title": "Balance\x00", "payload": "BAL"}), "NUL"),
        (item(1, delivery={"mids": ["m"], "watermark": 10**30}), "watermark out of range"),
        (item(1, read={"watermark": -5}), "watermark out of range"),
        (item(1, delivery={"mids": ["m\x00"], "watermark": 1}), "NUL"),
    ],
)
def test_values_out_of_the_platforms_shape_make_the_event_unknown(bad, reason):
    good = item(2, message={"mid": "m_ok", "text": "fine"})

    events = parse_envelope(envelope(entry(bad, good)))

    unknown = [e for e in events if isinstance(e, UnknownEvent)]
    assert len(events) == 2 and len(unknown) == 1
    assert reason in unknown[0].error
    assert unknown[0].sender_id in (None, PSID)
    assert any(isinstance(e, MessageEvent) and e.mid == "m_ok" for e in events)


@pytest.mark.parametrize("page", [None, "PAGE", "1" * 33, "12\x0034", 10**33])
def test_an_entry_without_a_usable_page_id_is_one_unknown_event(page):
    good = entry(item(2, message={"mid": "m_ok", "text": "fine"}))
    bad = entry(item(1, message={"mid": "m_bad", "text": "x"}), page=page)

    events = parse_envelope(envelope(bad, good))

    assert [type(e) for e in events] == [UnknownEvent, MessageEvent]
    assert "page id" in events[0].error
    assert events[1].mid == "m_ok"


def test_an_entry_time_out_of_range_counts_as_none():
    (event,) = parse_envelope(envelope(entry("garbage", time=10**30)))

    assert event.timestamp == 0


def test_non_object_item_becomes_unknown():
    events = parse_envelope(envelope(entry("garbage", item(2, read={"watermark": 1}), time=5)))
    assert [type(e) for e in events] == [ReadEvent, UnknownEvent]
    assert events[1].raw == {"item": "garbage"}
    assert events[1].timestamp == 5000  # the entry's time, read as seconds


@pytest.mark.parametrize(
    "field", ["message_template_status_update", "messenger_template_status_update"]
)
def test_template_status_from_changes_array(field):
    change = {
        "field": field,
        "value": {
            "event": "APPROVED",
            "message_template_id": 778899,
            "message_template_name": "bank_card_alert",
            "message_template_language": "en_US",
            "reason": "NONE",
        },
    }
    body = envelope({"id": PAGE, "time": 1767225600, "changes": [change]})
    (event,) = parse_envelope(body)
    assert isinstance(event, TemplateStatusEvent)
    assert (event.template_id, event.template_name, event.status, event.language) == (
        "778899",
        "bank_card_alert",
        "APPROVED",
        "en_US",
    )
    assert event.timestamp == 1767225600000
    assert (event.sender_id, event.recipient_id) == (None, None)


@pytest.mark.parametrize(
    "field", ["message_template_status_update", "messenger_template_status_update"]
)
def test_template_status_inside_messaging_array(field):
    status = {
        "sender": {"id": PAGE},
        "recipient": {"id": PAGE},
        "timestamp": 11,
        field: {
            "status": "REJECTED",
            "template_id": "5",
            "name": "alert",
            "rejected_reason": "PROMOTIONAL",
        },
    }
    (event,) = parse_envelope(envelope(entry(status)))
    assert isinstance(event, TemplateStatusEvent)
    assert (event.template_id, event.status, event.reason) == ("5", "REJECTED", "PROMOTIONAL")


def test_other_changes_are_kept_as_unknown():
    body = envelope({"id": PAGE, "time": 1, "changes": [{"field": "feed", "value": {}}]})
    (event,) = parse_envelope(body)
    assert isinstance(event, UnknownEvent)
    assert event.kind == "feed"


def test_dict_input_is_accepted():
    events = parse_envelope(json.loads(envelope(entry(item(1, read={"watermark": 1})))))
    assert isinstance(events[0], ReadEvent)


def test_empty_entry_list_gives_no_events():
    assert parse_envelope(envelope()) == []


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"not json", "not valid JSON"),
        (b"\xff\xfe", "not valid JSON"),
        (b"[]", "JSON object"),
        (b'{"object":"instagram","entry":[]}', "page"),
        (b'{"entry":[]}', "page"),
        (b'{"object":"page"}', "entry"),
        (b'{"object":"page","entry":{}}', "entry"),
        (b'{"object":"page","entry":["x"]}', r"entry\[0\]"),
        (b'{"object":"page","entry":[{"id":"1","messaging":{}}]}', "messaging"),
    ],
)
def test_malformed_envelopes_raise_a_clear_error(body, message):
    with pytest.raises(WebhookPayloadError, match=message):
        parse_envelope(body)


def test_payload_error_is_a_value_error():
    assert issubclass(WebhookPayloadError, ValueError)
