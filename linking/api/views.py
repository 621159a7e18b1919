"""The core-banking API's view of customers and their accounts."""

import re

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import (
    OpenApiExample,
    extend_schema,
    extend_schema_field,
    extend_schema_serializer,
)
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api.parsers import JSONBodyParser
from core.api.problems import PROBLEM, invalid
from core.api.scopes import CUSTOMERS_WRITE
from linking.api.common import (
    IDEMPOTENCY_KEY,
    DecimalTextField,
    StrictInputSerializer,
    TextField,
    TextRegexField,
    api_actor,
    django_errors,
    external_id_parameter,
    serializer_errors,
)
from linking.api.validators import (
    CARD_NUMBER_REASON,
    CURRENCY_RULE,
    EXTERNAL_ID_RULE,
    card_number_paths,
    is_currency,
    is_external_id,
    looks_like_card_number,
)
from linking.models import Account, Customer
from linking.services import customer_upsert

ANCHORED_EXTERNAL_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}\Z")
LOCALE = re.compile(r"^[a-z]{2,3}(?:[_-][A-Za-z]{2,4})?\Z")
CUSTOMER_EXAMPLE = {
    "name": "Ana Souza",
    "locale": "pt-BR",
    "accounts": [
        {
            "id": "chk-001",
            "kind": "checking",
            "name": "Everyday account",
            "last4": "4821",
            "currency": "EUR",
            "balance": "1204.50",
        },
        {
            "id": "visa-001",
            "kind": "credit_card",
            "name": "Visa card",
            "last4": "9012",
            "currency": "EUR",
            "balance": "-80.00",
        },
    ],
    "directory": {"username": "ana", "password": "open sesame 42"},
}


@extend_schema_serializer(component_name="CustomerAccountInput")
class CustomerAccountInputSerializer(StrictInputSerializer):
    id = TextRegexField(
        ANCHORED_EXTERNAL_ID, max_length=64, error_messages={"invalid": EXTERNAL_ID_RULE}
    )
    kind = serializers.ChoiceField(
        choices=Account.Kind.choices,
        error_messages={"invalid_choice": "must be one of checking, savings, credit_card"},
    )
    name = TextField(max_length=100)
    last4 = TextField(max_length=32, help_text="The last 4 digits only; a full number is refused.")
    currency = TextField(help_text="ISO 4217, e.g. EUR.")
    balance = DecimalTextField(max_digits=18, decimal_places=2)

    def validate_currency(self, value: str) -> str:
        if not is_currency(value):
            raise serializers.ValidationError(CURRENCY_RULE)
        return value


@extend_schema_serializer(component_name="DirectoryLoginInput")
class DirectoryLoginInputSerializer(StrictInputSerializer):
    username = TextField(max_length=150)
    password = TextField(min_length=8, max_length=128, write_only=True, trim_whitespace=False)


@extend_schema_serializer(component_name="CustomerAccount")
class CustomerAccountSerializer(serializers.Serializer):
    id = serializers.CharField(source="external_id")
    kind = serializers.ChoiceField(choices=Account.Kind.choices)
    name = serializers.CharField()
    last4 = serializers.CharField()
    currency = serializers.CharField()
    balance = serializers.DecimalField(max_digits=18, decimal_places=2)
    active = serializers.BooleanField(help_text="False once the core stopped listing it.")


@extend_schema_serializer(component_name="DirectoryLogin")
class DirectoryLoginSerializer(serializers.Serializer):
    username = serializers.CharField()


class CustomerUpsertApi(APIView):
    """Create or replace a customer and their accounts, exactly as the core knows them.

    Accounts left out of `accounts` are deactivated, which stops their notifications.
    """

    # Read by the API's idempotency middleware: these methods honour `Idempotency-Key`.
    idempotent_methods = ("PUT",)
    required_scopes = {"PUT": CUSTOMERS_WRITE}
    parser_classes = [JSONBodyParser]

    @extend_schema_serializer(component_name="CustomerInput")
    class InputSerializer(StrictInputSerializer):
        name = TextField(max_length=200)
        locale = TextRegexField(
            LOCALE,
            max_length=10,
            required=False,
            default="en",
            error_messages={"invalid": "must be a language tag such as en or pt-BR"},
        )
        accounts = CustomerAccountInputSerializer(many=True, max_length=100)
        directory = DirectoryLoginInputSerializer(
            required=False,
            allow_null=True,
            help_text="Demo-directory login; null removes it, leaving it out keeps it.",
        )

    @extend_schema_serializer(component_name="Customer")
    class OutputSerializer(serializers.Serializer):
        id = serializers.CharField(source="external_id")
        name = serializers.CharField()
        locale = serializers.CharField()
        accounts = CustomerAccountSerializer(many=True)
        directory = serializers.SerializerMethodField()
        created_at = serializers.DateTimeField()
        updated_at = serializers.DateTimeField()

        @extend_schema_field(DirectoryLoginSerializer(allow_null=True))
        def get_directory(self, customer: Customer) -> dict | None:
            if not customer.directory_username:
                return None
            return {"username": customer.directory_username}

    @extend_schema(
        operation_id="customer_upsert",
        summary="Create or replace a customer and their accounts",
        parameters=[
            external_id_parameter(
                "customer_id",
                "The bank's id of the customer; a full card or account number is refused.",
            ),
            IDEMPOTENCY_KEY,
        ],
        request=InputSerializer,
        responses={
            200: OutputSerializer,
            201: OutputSerializer,
            400: PROBLEM,
            401: PROBLEM,
            422: PROBLEM,
            429: PROBLEM,
        },
        examples=[
            OpenApiExample("A customer with two accounts", CUSTOMER_EXAMPLE, request_only=True)
        ],
    )
    def put(self, request, customer_id: str):
        body = self._valid_body(request.data, customer_id)
        bank = request.user.bank
        existed = Customer.objects.filter(bank=bank, external_id=customer_id).exists()
        directory = body.get("directory", ...)
        username = password = None
        if directory is None:
            username = ""  # null removes the login
        elif directory is not ...:
            username, password = directory["username"], directory["password"]
        try:
            customer = customer_upsert(
                actor=api_actor(request.user),
                bank=bank,
                external_id=customer_id,
                name=body["name"],
                locale=body["locale"],
                accounts=[
                    {
                        "id": account["id"],
                        "kind": account["kind"],
                        "name": account["name"],
                        "last4": account["last4"],
                        "currency": account["currency"],
                        "balance": account["balance"],
                    }
                    for account in body["accounts"]
                ],
                directory_username=username,
                directory_password=password,
            )
        except DjangoValidationError as exc:
            raise invalid(django_errors(exc)) from exc
        return Response(
            self.OutputSerializer(customer).data,
            status=status.HTTP_200_OK if existed else status.HTTP_201_CREATED,
        )

    def _valid_body(self, data, customer_id: str) -> dict:
        errors = []
        if not is_external_id(customer_id):
            errors.append({"path": "customer_id", "reason": EXTERNAL_ID_RULE})
        elif looks_like_card_number(customer_id, identifier=True):
            errors.append({"path": "customer_id", "reason": CARD_NUMBER_REASON})
        if not isinstance(data, dict):
            raise invalid([*errors, {"path": "", "reason": "must be a JSON object"}])
        skip = frozenset({"directory.password"})
        errors += [
            {"path": path, "reason": CARD_NUMBER_REASON}
            for path in card_number_paths(data, skip=skip)
        ]
        if errors:
            raise invalid(errors)
        serializer = self.InputSerializer(data=data)
        if not serializer.is_valid():
            raise invalid(serializer_errors(serializer.errors))
        return serializer.validated_data
