"""The production URLs plus the benchmark's bare DRF one-row insert (bench settings only)."""

import json

from django.db import connection
from django.urls import path
from django.utils import timezone
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from bankside.urls import urlpatterns as production_urlpatterns

BARE_TABLE = "bench_bare_row"


class BareInsert(APIView):
    """The same stack with nothing of the API's own: parse JSON, insert one row, answer."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes: list = []

    def post(self, request):
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {BARE_TABLE} (body, received_at) VALUES (%s, %s) RETURNING id",  # noqa: S608
                [json.dumps(request.data), timezone.now()],
            )
            (row_id,) = cursor.fetchone()
        return Response({"id": row_id}, status=201)


urlpatterns = [path("bench/bare-insert", BareInsert.as_view()), *production_urlpatterns]
