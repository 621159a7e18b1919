"""The core-banking events API: post events, look one up, read the outcome feed."""

import re

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api.cursors import CURSOR, cursor_decode, cursor_encode
from core.api.parsers import JSONBodyParser, raw_body
from core.api.problems import PROBLEM, invalid, problem
from core.api.scopes import EVENTS_READ, EVENTS_WRITE, OUTCOMES_READ
from linking.api.common import IDEMPOTENCY_KEY, api_actor, external_id_parameter
from linking.api.validators import field_name
from notifications import selectors
from notifications.api import schemas
from notifications.services import MAX_BATCH
from notifications.services.ingest_groups import ingest_groups
from notifications.validation import EVENT_FIELDS


class TooManyEvents(exceptions.APIException):
    status_code = 413
    default_detail = f"A batch holds at most {MAX_BATCH} events; split it."
    default_code = "too_many_events"


ENVELOPE = 'must be one event or {"events": [...]}'
BOTH = 'holds both an event\'s fields and "events": send one event, or a batch with only "events"'


def _events_of(body, raw: bytes) -> list:
    """The events of a request body: one event object, or `{"events": [...]}`.

    An object with none of an event's fields is no event (an empty body, `{}`, a body
    meant for another endpoint): it is refused whole rather than answered as one
    rejected event, so a caller that sent nothing is told so.
    """
    if not raw.strip():
        raise invalid([{"path": "", "reason": 'is empty: send one event, or {"events": [...]}'}])
    if not isinstance(body, dict):
        raise invalid([{"path": "", "reason": ENVELOPE}])
    event_fields = [key for key in body if key in EVENT_FIELDS]
    if "events" not in body:
        if not event_fields:
            raise invalid([{"path": "", "reason": f"{ENVELOPE}; it has no field of an event"}])
        return [body]
    if event_fields:
        raise invalid([{"path": "", "reason": BOTH}])
    if set(body) != {"events"}:
        raise invalid([{"path": "", "reason": 'a batch must hold only "events"'}])
    events = body["events"]
    if not isinstance(events, list) or not events:
        raise invalid([{"path": "events", "reason": f"must be a list of 1 to {MAX_BATCH} events"}])
    if len(events) > MAX_BATCH:
        raise TooManyEvents()
    return events


class EventIngestApi(APIView):
    """Post one event, or a batch of up to 1000; each is answered on its own."""

    idempotent_methods = ("POST",)
    parser_classes = [JSONBodyParser]
    required_scopes = {"POST": EVENTS_WRITE}

    @extend_schema(
        operation_id="events_ingest",
        summary="Post account events",
        description=(
            'One event, or `{"events": [...]}` with 1 to 1000. The answer is 202 with one '
            "result per event, in order: `accepted`, `duplicate` (its id was posted before; "
            "nothing changes and the original outcome is given) or `rejected` with reasons. "
            "Text that looks like a full card or account number is refused and never stored. "
            "A body that is not JSON, or of the wrong shape (empty, an object with no field "
            "of an event, or both an event's fields and `events`), is a 400 problem; more than "
            "1000 events a 413 problem; neither writes anything."
        ),
        parameters=[IDEMPOTENCY_KEY],
        request=schemas.EventsRequest,
        responses={
            202: schemas.IngestResponse,
            400: PROBLEM,
            401: PROBLEM,
            413: problem(f"More than {MAX_BATCH} events, or a body larger than this API accepts."),
            415: PROBLEM,
            422: PROBLEM,
            429: PROBLEM,
        },
        examples=[*schemas.REQUEST_EXAMPLES, *schemas.RESPONSE_EXAMPLES],
    )
    def post(self, request):
        raw = raw_body(request)  # refuses an oversized body before it is parsed
        events = _events_of(request.data, raw)
        report = ingest_groups.ingest(
            actor=api_actor(request.user), bank=request.user.bank, events=events
        )
        return Response(report.as_dict(), status=status.HTTP_202_ACCEPTED)


class EventDetailApi(APIView):
    """An event this bank posted: its status and the notifications it produced."""

    required_scopes = {"GET": EVENTS_READ}

    @extend_schema(
        operation_id="event_get",
        summary="Look up an event by the bank's id",
        parameters=[
            external_id_parameter(
                "event_id", "The bank's id of the event, as posted; an id no event has is a 404."
            )
        ],
        responses={
            200: schemas.EventDetail,
            401: PROBLEM,
            404: problem("This bank has posted no event with this id."),
            429: PROBLEM,
        },
    )
    def get(self, request, event_id: str):
        event = selectors.event_get(bank=request.user.bank, event_id=event_id)
        if event is None:
            raise exceptions.NotFound("This bank has posted no event with this id.")
        return Response(
            {
                "id": event.event_id,
                "type": event.type,
                "customer_id": event.customer.external_id,
                "account_id": event.account.external_id,
                "occurred_at": serializers.DateTimeField().to_representation(event.occurred_at),
                "received_at": serializers.DateTimeField().to_representation(event.received_at),
                "status": event.status,
                "data": event.data,
                "notifications": [
                    notification_row(n) for n in selectors.notification_list_for_event(event=event)
                ],
            }
        )


def _time(moment):
    return serializers.DateTimeField().to_representation(moment) if moment else None


def notification_row(notification) -> dict:
    return {
        "id": str(notification.pk),
        "state": notification.state,
        "urgency": notification.urgency,
        "reason": notification.reason or None,
        "detail": notification.detail or None,
        "form": notification.form or None,
        "attempts": notification.attempts,
        "data_categories": notification.data_categories,
        "created_at": _time(notification.created_at),
        "next_attempt_at": _time(notification.next_attempt_at)
        if notification.state == "pending"
        else None,
        "sent_at": _time(notification.sent_at),
        "delivered_at": _time(notification.delivered_at),
        "read_at": _time(notification.read_at),
        "digest_id": str(notification.digest) if notification.digest else None,
    }


LIMIT = re.compile(r"[0-9]{1,9}")


class OutcomeListApi(APIView):
    """What became of the bank's events (and, with delivery, of their notifications)."""

    DEFAULT_LIMIT, MAX_LIMIT = 100, 1000
    required_scopes = {"GET": OUTCOMES_READ}

    @extend_schema(
        operation_id="outcomes_list",
        summary="Read the outcome feed from a cursor",
        description=(
            "Outcomes oldest first, from just after `cursor` (from the start without one). "
            "Keep `next_cursor` and pass it next time: each outcome is served exactly once "
            "per cursor walk, so there is no need to poll events one by one. Other query "
            "parameters are refused: a misspelt `cursor` would read the feed from the start."
        ),
        parameters=[
            OpenApiParameter(
                "cursor",
                {"type": "string", "minLength": 1, "pattern": f"^{CURSOR.pattern}$"},
                required=False,
                description="Opaque: a `next_cursor` this API gave. Leave it out (rather "
                "than sending it empty) to read from the start.",
            ),
            OpenApiParameter(
                "limit",
                {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100},
                required=False,
                description="1 to 1000 (100).",
            ),
        ],
        responses={200: schemas.OutcomePage, 400: PROBLEM, 401: PROBLEM, 429: PROBLEM},
    )
    def get(self, request):
        self._refuse_unknown(request.query_params)
        after_id = (
            cursor_decode(request.query_params["cursor"]) if "cursor" in request.query_params else 0
        )
        limit = self._limit(request.query_params.get("limit"))
        rows = selectors.outcome_list(bank=request.user.bank, after_id=after_id, limit=limit + 1)
        page, has_more = rows[:limit], len(rows) > limit
        return Response(
            {
                "outcomes": [self._row(outcome) for outcome in page],
                "next_cursor": cursor_encode(page[-1].id if page else after_id),
                "has_more": has_more,
            }
        )

    @staticmethod
    def _refuse_unknown(params) -> None:
        errors = []
        for key in params:
            if key in ("cursor", "limit"):
                continue
            name = field_name(key) if key else "*"
            if name == "*":
                errors.append({"path": "", "reason": "has a parameter whose name is not allowed"})
            else:
                errors.append({"path": name, "reason": "is not a parameter of this operation"})
        if errors:
            raise invalid(errors)

    def _limit(self, raw: str | None) -> int:
        if raw is None:
            return self.DEFAULT_LIMIT
        if not LIMIT.fullmatch(raw) or not 1 <= int(raw) <= self.MAX_LIMIT:
            raise invalid([{"path": "limit", "reason": f"must be from 1 to {self.MAX_LIMIT}"}])
        return int(raw)

    @staticmethod
    def _row(outcome) -> dict:
        return {
            "id": str(outcome.id),
            "type": outcome.type,
            "occurred_at": serializers.DateTimeField().to_representation(outcome.occurred_at),
            "event_id": outcome.event_ref or None,
            "event_type": outcome.event_type or None,
            "notification_id": str(outcome.notification_id) if outcome.notification_id else None,
            "reasons": outcome.details.get("reasons", []),
            "notification_reason": outcome.details.get("reason") or None
            if outcome.notification_id
            else None,
            "notification_urgency": outcome.notification_urgency,
            "hand_back_reason": outcome.details.get("hand_back_reason") or None,
            "digest_id": str(outcome.details["digest"]) if outcome.details.get("digest") else None,
        }
