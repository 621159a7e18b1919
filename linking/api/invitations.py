"""The core-banking API's link invitations: linking from the bank's own channel."""

import re
from typing import Any

from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_serializer
from rest_framework import exceptions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api import idempotency
from core.api.parsers import JSONBodyParser, raw_body
from core.api.problems import PROBLEM, invalid, problem
from core.api.scopes import CUSTOMERS_WRITE
from linking.api.common import (
    IDEMPOTENCY_KEY,
    StrictInputSerializer,
    api_actor,
    external_id_parameter,
    serializer_errors,
)
from linking.api.validators import EXTERNAL_ID_RULE, is_external_id
from linking.models import Customer, LinkInvitation
from linking.services import (
    InvitationKeyReusedError,
    InvitationUnavailableError,
    link_invitation_issue,
)

MAX_SECONDS = LinkInvitation.MAX_LIFETIME_SECONDS
KEY = re.compile(r"[\x21-\x7e]{1,255}")


class CustomerNotFound(exceptions.NotFound):
    default_detail = "No customer of this bank has this id."
    default_code = "customer_not_found"


class InvitationsUnavailable(exceptions.APIException):
    status_code = 409
    default_code = "invitations_unavailable"
    default_detail = "The bank cannot invite customers to link now."


class LinkInvitationCreateApi(APIView):
    """Invite a customer, already signed in to the bank's app, to link Messenger."""

    # `Idempotency-Key` is honoured by the service, not by the API's generic store of
    # answers, which would keep the invitation's URL (a credential) as it was sent.
    parser_classes = [JSONBodyParser]
    # An invitation links a customer the bank keeps: the customers' write scope.
    required_scopes = {"POST": CUSTOMERS_WRITE}

    @extend_schema_serializer(component_name="LinkInvitationInput")
    class InputSerializer(StrictInputSerializer):
        expires_in = serializers.IntegerField(
            min_value=60,
            max_value=MAX_SECONDS,
            required=False,
            default=MAX_SECONDS,
            help_text="Seconds the URL stays valid, from 60 to 900 (the default).",
            error_messages={
                "invalid": "must be a whole number of seconds",
                "min_value": "must be at least 60 seconds",
                "max_value": "must be at most 900 seconds (15 minutes)",
            },
        )

        def to_internal_value(self, data: Any) -> Any:
            seconds = data.get("expires_in") if isinstance(data, dict) else None
            if isinstance(seconds, bool | float | str):
                raise exceptions.ValidationError(
                    {"expires_in": ["must be a whole number of seconds"]}
                )
            return super().to_internal_value(data)  # type: ignore[no-untyped-call]

    @extend_schema_serializer(component_name="LinkInvitation")
    class OutputSerializer(serializers.Serializer[Any]):
        url = serializers.URLField(
            help_text="Open it in the customer's browser, signed in: it shows the consent "
            "screen once. Never send it anywhere else: whoever opens it acts as the customer."
        )
        expires_at = serializers.DateTimeField()

    @extend_schema(
        operation_id="link_invitation_create",
        summary="Invite a signed-in customer to link Messenger",
        description=(
            "For a customer already signed in to the bank's online banking or app: the "
            "answer's `url` is a single-use bankside page that shows that customer the consent "
            "screen (the URL is the bank's word that the browser is the customer), valid for "
            "at most 15 minutes. *Allow* sends them to `https://m.me/<page>?ref=<ref>`; the "
            "first person to open that link in Messenger is linked, once, within 24 hours. "
            "This is how to link where Messenger's Log In linking is unavailable (the EEA, "
            "the UK, Japan). A customer unknown to this bank is a 404; a bank that does not "
            "offer m.me invitations, has no Page connected or has paused Messenger gets a 409."
        ),
        parameters=[
            external_id_parameter("customer_id", "The bank's id of the customer."),
            IDEMPOTENCY_KEY,
        ],
        request=InputSerializer,
        responses={
            201: OutputSerializer,
            400: PROBLEM,
            401: PROBLEM,
            404: problem("No customer of this bank has this id."),
            409: problem("The bank does not offer m.me invitations, or cannot invite now."),
            422: PROBLEM,
            429: PROBLEM,
        },
        examples=[
            OpenApiExample("The longest invitation", {"expires_in": 900}, request_only=True),
            OpenApiExample(
                "An invitation",
                {
                    "url": "https://bankside.example/link/harbour/invitation/8vX…",
                    "expires_at": "2026-12-06T18:15:00Z",
                },
                response_only=True,
                status_codes=["201"],
            ),
        ],
    )
    def post(self, request: Request, customer_id: str) -> Response:
        if not is_external_id(customer_id):
            raise invalid([{"path": "customer_id", "reason": EXTERNAL_ID_RULE}])
        data: Any = request.data
        if not isinstance(data, dict):
            raise invalid([{"path": "", "reason": "must be a JSON object"}])
        serializer = self.InputSerializer(data=data)
        if not serializer.is_valid():
            raise invalid(serializer_errors(serializer.errors))
        key = request.headers.get(idempotency.HEADER)
        if key is not None and not KEY.fullmatch(key):
            raise invalid(
                [
                    {
                        "path": idempotency.HEADER,
                        "reason": "must be 1 to 255 printable ASCII characters",
                    }
                ]
            )
        bank = request.user.bank  # type: ignore[union-attr]
        customer = Customer.objects.filter(bank=bank, external_id=customer_id).first()
        if customer is None:
            raise CustomerNotFound()
        try:
            issued = link_invitation_issue(
                actor=api_actor(request.user),
                customer=customer,
                lifetime_seconds=serializer.validated_data["expires_in"],
                idempotency_key=key or "",
                fingerprint=idempotency.fingerprint(
                    customer_id.encode() + b"\n" + raw_body(request)
                ),
            )
        except InvitationUnavailableError as exc:
            raise InvitationsUnavailable(str(exc)) from exc
        except InvitationKeyReusedError as exc:
            raise idempotency.IdempotencyKeyReused() from exc
        output = self.OutputSerializer(
            {"url": issued.url, "expires_at": issued.invitation.expires_at}
        )
        response = Response(output.data, status=status.HTTP_201_CREATED)
        if issued.replayed:
            response[idempotency.REPLAYED_HEADER] = "true"
        return response
