from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api.problems import PROBLEM
from core.api.scopes import ANY_KEY


class WhoamiApi(APIView):
    """Which bank and key the caller authenticated as: a smoke test for API keys."""

    required_scopes = {"GET": ANY_KEY}

    class OutputSerializer(serializers.Serializer):
        bank = serializers.CharField(source="bank.slug")
        key = serializers.CharField(source="api_key.name")

    @extend_schema(
        responses={
            200: OutputSerializer,
            401: PROBLEM,
            429: PROBLEM,
        },
        summary="Which bank and key is calling",
    )
    def get(self, request):
        return Response(self.OutputSerializer(request.user).data)
