"""OpenAPI descriptions of the events API. Validation itself is `notifications.validation`:
these serializers only document it (and a test checks every example against it)."""

from drf_spectacular.utils import OpenApiExample, PolymorphicProxySerializer
from rest_framework import serializers

from linking.api.common import StrictInputSerializer
from notifications.models import Event, HandBackReason, Notification, Outcome
from notifications.services import MAX_BATCH
from notifications.validation import SHIPMENT_STATUSES

SIGNED_AMOUNT_HELP = 'A decimal string with an optional sign, e.g. "-42.10".'
AMOUNT_HELP = 'A decimal string, e.g. "42.10".'
RESULT_STATUSES = ("accepted", "duplicate", "rejected")
LAST4_HELP = "Exactly the last 4 digits. A longer number is refused and never stored."


def _amount(help_text: str = SIGNED_AMOUNT_HELP, **kwargs) -> serializers.CharField:
    return serializers.CharField(help_text=help_text, **kwargs)


class TransactionPostedData(StrictInputSerializer):
    amount = _amount()
    currency = serializers.CharField(help_text="ISO 4217, e.g. EUR.")
    description = serializers.CharField(max_length=200)
    merchant = serializers.CharField(max_length=200, required=False)
    card_last4 = serializers.CharField(
        min_length=4, max_length=4, required=False, help_text=LAST4_HELP
    )
    category = serializers.CharField(max_length=64, required=False)


class BalanceUpdatedData(StrictInputSerializer):
    available = _amount()
    ledger = _amount(required=False)
    currency = serializers.CharField()


class FraudAlertData(StrictInputSerializer):
    alert_id = serializers.CharField(max_length=64)
    amount = _amount()
    currency = serializers.CharField()
    merchant = serializers.CharField(max_length=200)
    card_last4 = serializers.CharField(min_length=4, max_length=4, help_text=LAST4_HELP)
    location = serializers.CharField(max_length=200, required=False)


class ReceiptItem(StrictInputSerializer):
    title = serializers.CharField(max_length=200)
    quantity = serializers.IntegerField(min_value=1, max_value=10_000)
    price = _amount(AMOUNT_HELP)


class ReceiptIssuedData(StrictInputSerializer):
    order_number = serializers.CharField(max_length=64)
    merchant = serializers.CharField(max_length=200)
    items = ReceiptItem(many=True)
    shipping = _amount(AMOUNT_HELP, required=False)
    tax = _amount(AMOUNT_HELP, required=False)
    discount = _amount(AMOUNT_HELP, required=False)
    total = _amount(
        "Must equal the items (price times quantity) plus shipping and tax minus discount."
    )
    currency = serializers.CharField()


class ShipmentUpdatedData(StrictInputSerializer):
    order_number = serializers.CharField(max_length=64)
    carrier = serializers.CharField(max_length=64)
    status = serializers.ChoiceField(choices=SHIPMENT_STATUSES)
    tracking_url = serializers.URLField(required=False, help_text="https:// only.")


def _event(name: str, event_type: str, data: type[serializers.Serializer]):
    fields = {
        "id": serializers.CharField(
            max_length=64, help_text="The bank's id of the event, unique per bank."
        ),
        "type": serializers.ChoiceField(choices=[event_type]),
        "customer_id": serializers.CharField(max_length=64),
        "account_id": serializers.CharField(max_length=64),
        "occurred_at": serializers.DateTimeField(),
        "data": data(),
    }
    return type(name, (StrictInputSerializer,), fields)


EVENT_SERIALIZERS = {
    event_type.value: _event(name, event_type.value, data)
    for event_type, name, data in [
        (Event.Type.TRANSACTION_POSTED, "TransactionPostedEvent", TransactionPostedData),
        (Event.Type.BALANCE_UPDATED, "BalanceUpdatedEvent", BalanceUpdatedData),
        (Event.Type.FRAUD_ALERT, "FraudAlertEvent", FraudAlertData),
        (Event.Type.RECEIPT_ISSUED, "ReceiptIssuedEvent", ReceiptIssuedData),
        (Event.Type.SHIPMENT_UPDATED, "ShipmentUpdatedEvent", ShipmentUpdatedData),
    ]
}
EventSchema = PolymorphicProxySerializer(
    component_name="Event",
    serializers=EVENT_SERIALIZERS,
    resource_type_field_name="type",
)


class EventBatch(StrictInputSerializer):
    events = serializers.ListField(
        child=PolymorphicProxySerializer(
            component_name="Event",
            serializers=EVENT_SERIALIZERS,
            resource_type_field_name="type",
        ),
        min_length=1,
        max_length=MAX_BATCH,
    )


EventsRequest = PolymorphicProxySerializer(
    component_name="EventsRequest",
    serializers=[EventSchema, EventBatch],
    resource_type_field_name=None,
)


class Reason(serializers.Serializer):
    path = serializers.CharField(help_text="Where in the event, e.g. `data.card_last4`.")
    reason = serializers.CharField()


class OriginalOutcome(serializers.Serializer):
    status = serializers.ChoiceField(choices=Event.Status.choices)
    received_at = serializers.DateTimeField()


class EventResult(serializers.Serializer):
    index = serializers.IntegerField(help_text="Position of the event in the request.")
    id = serializers.CharField(allow_null=True, help_text="Null when the id itself was refused.")
    status = serializers.ChoiceField(choices=RESULT_STATUSES)
    reasons = Reason(many=True, required=False, help_text="Only for rejected events.")
    original = OriginalOutcome(required=False, help_text="Only for duplicates.")


class IngestResponse(serializers.Serializer):
    accepted = serializers.IntegerField()
    duplicates = serializers.IntegerField()
    rejected = serializers.IntegerField()
    results = EventResult(many=True)


URGENCY_HELP = (
    "Its class, fixed when it was queued: `urgent` ones (fraud alerts, and the event types "
    "the bank's policy marks urgent) go out before `routine` ones."
)


DIGEST_HELP = (
    "Set when it was (or is being) sent in a digest (a Page under backlog sends a "
    "person's several routine updates as one message): the id of the notification whose "
    "message carried it, the same for every notification of that digest. Null otherwise."
)


class NotificationSummary(serializers.Serializer):
    id = serializers.CharField()
    state = serializers.ChoiceField(choices=Notification.State.choices)
    urgency = serializers.ChoiceField(choices=Notification.Urgency.choices, help_text=URGENCY_HELP)
    reason = serializers.ChoiceField(
        choices=Notification.Reason.choices,
        allow_null=True,
        help_text="Why it is in this state (waiting, held, failed…); null once sent.",
    )
    detail = serializers.CharField(allow_null=True, help_text="The reason in words.")
    form = serializers.ChoiceField(
        choices=Notification.Form.choices,
        allow_null=True,
        help_text="How it was (or is being) sent: a free-form update or a utility template.",
    )
    attempts = serializers.IntegerField()
    data_categories = serializers.ListField(
        child=serializers.CharField(), help_text="The consent scopes the message draws on."
    )
    created_at = serializers.DateTimeField()
    next_attempt_at = serializers.DateTimeField(allow_null=True)
    sent_at = serializers.DateTimeField(allow_null=True)
    delivered_at = serializers.DateTimeField(allow_null=True)
    read_at = serializers.DateTimeField(allow_null=True)
    digest_id = serializers.CharField(allow_null=True, help_text=DIGEST_HELP)


class EventDetail(serializers.Serializer):
    id = serializers.CharField()
    type = serializers.ChoiceField(choices=Event.Type.choices)
    customer_id = serializers.CharField()
    account_id = serializers.CharField()
    occurred_at = serializers.DateTimeField()
    received_at = serializers.DateTimeField()
    status = serializers.ChoiceField(choices=Event.Status.choices)
    data = serializers.DictField()
    notifications = NotificationSummary(
        many=True, help_text="One per linked person whose consent covers the event."
    )


class OutcomeRow(serializers.Serializer):
    id = serializers.CharField(help_text="Unique, increasing within the feed.")
    type = serializers.ChoiceField(
        choices=Outcome.Type.choices,
        help_text="`subject.outcome`: an event accepted or rejected, a notification sent, "
        "delivered, read, failed, dead-lettered, or handed back to the bank's own channels "
        "(a `notification.undeliverable` callback went to the bank with it).",
    )
    occurred_at = serializers.DateTimeField()
    event_id = serializers.CharField(allow_null=True)
    event_type = serializers.CharField(allow_null=True)
    notification_id = serializers.CharField(
        allow_null=True, help_text="Set on notification outcomes; null for event outcomes."
    )
    reasons = Reason(many=True, help_text="Why an event was rejected; empty otherwise.")
    notification_reason = serializers.ChoiceField(
        choices=Notification.Reason.choices,
        allow_null=True,
        help_text="Why a notification failed or was dead-lettered; null otherwise.",
    )
    notification_urgency = serializers.ChoiceField(
        choices=Notification.Urgency.choices,
        allow_null=True,
        help_text=f"{URGENCY_HELP} Set on notification outcomes; null for event outcomes.",
    )
    hand_back_reason = serializers.ChoiceField(
        choices=HandBackReason.choices,
        allow_null=True,
        help_text="On `notification.handed_back`: why Messenger could not carry it, the "
        "`reason` of its `notification.undeliverable` callback. Null otherwise.",
    )
    digest_id = serializers.CharField(
        allow_null=True,
        help_text="On `notification.sent`, set when it went out in a digest (a Page under "
        "backlog sends a person's several routine updates as one message): the id of the "
        "notification whose message carried it, the same for every notification of that "
        "digest, each of which has its own `notification.sent`. Null otherwise.",
    )


class OutcomePage(serializers.Serializer):
    outcomes = OutcomeRow(many=True)
    next_cursor = serializers.CharField(
        help_text="Pass as `cursor` next time; returned even when there is nothing new."
    )
    has_more = serializers.BooleanField()


OCCURRED_AT = "2026-03-01T09:30:00Z"
EXAMPLE_EVENTS = {
    Event.Type.TRANSACTION_POSTED: {
        "id": "evt-10001",
        "type": "transaction.posted",
        "customer_id": "cu-ana",
        "account_id": "visa-001",
        "occurred_at": OCCURRED_AT,
        "data": {
            "amount": "-42.10",
            "currency": "EUR",
            "description": "Groceries",
            "merchant": "Mercado Central",
            "card_last4": "9012",
            "category": "groceries",
        },
    },
    Event.Type.BALANCE_UPDATED: {
        "id": "evt-10002",
        "type": "balance.updated",
        "customer_id": "cu-ana",
        "account_id": "chk-001",
        "occurred_at": OCCURRED_AT,
        "data": {"available": "1162.40", "ledger": "1204.50", "currency": "EUR"},
    },
    Event.Type.FRAUD_ALERT: {
        "id": "evt-10003",
        "type": "fraud.alert",
        "customer_id": "cu-ana",
        "account_id": "visa-001",
        "occurred_at": OCCURRED_AT,
        "data": {
            "alert_id": "fa-778",
            "amount": "-899.00",
            "currency": "EUR",
            "merchant": "ELECTRO-WORLD ONLINE",
            "card_last4": "9012",
            "location": "Lisbon, PT",
        },
    },
    Event.Type.RECEIPT_ISSUED: {
        "id": "evt-10004",
        "type": "receipt.issued",
        "customer_id": "cu-ana",
        "account_id": "visa-001",
        "occurred_at": OCCURRED_AT,
        "data": {
            "order_number": "ORD-5521",
            "merchant": "Livraria Bertrand",
            "items": [
                {"title": "Notebook", "quantity": 2, "price": "4.50"},
                {"title": "Fountain pen", "quantity": 1, "price": "25.00"},
            ],
            "shipping": "3.90",
            "tax": "0.00",
            "total": "37.90",
            "currency": "EUR",
        },
    },
    Event.Type.SHIPMENT_UPDATED: {
        "id": "evt-10005",
        "type": "shipment.updated",
        "customer_id": "cu-ana",
        "account_id": "visa-001",
        "occurred_at": OCCURRED_AT,
        "data": {
            "order_number": "ORD-5521",
            "carrier": "CTT",
            "status": "out_for_delivery",
            "tracking_url": "https://track.example/ORD-5521",
        },
    },
}
REQUEST_EXAMPLES = [
    *(
        OpenApiExample(f"One {event_type} event", example, request_only=True)
        for event_type, example in EXAMPLE_EVENTS.items()
    ),
    OpenApiExample("A batch", {"events": list(EXAMPLE_EVENTS.values())[:2]}, request_only=True),
]
RESPONSE_EXAMPLES = [
    OpenApiExample(
        "Mixed results",
        {
            "accepted": 1,
            "duplicates": 1,
            "rejected": 1,
            "results": [
                {"index": 0, "id": "evt-10001", "status": "accepted"},
                {
                    "index": 1,
                    "id": "evt-09999",
                    "status": "duplicate",
                    "original": {"status": "accepted", "received_at": "2026-03-01T09:30:02Z"},
                },
                {
                    "index": 2,
                    "id": "evt-10003",
                    "status": "rejected",
                    "reasons": [
                        {
                            "path": "data.card_last4",
                            "reason": "must be only the last 4 digits; a full card or account "
                            "number is refused and not stored",
                        }
                    ],
                },
            ],
        },
        response_only=True,
        status_codes=["202"],
    )
]
