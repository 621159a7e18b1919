"""The production URLs plus the benchmark's references (bench settings only): the bare DRF
one-row insert, and a post's database round trips with nothing else."""

import json

from django.db import connection, transaction
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


class RoundTripsOnly(APIView):
    """The database round trips of one posted event and nothing else: where the API's
    rate would top out if its own work (validation, rules, rendering, audit hashing, rate
    limits) cost nothing.

    As a post does: read the key, then the customer, before the transaction; in it three
    writes (the event; the notifications with the audit chain's lock; the audit entry
    with the outcome), each a round trip returning a row; then the commit. Plain inserts
    into one bench table stand in for the writes.
    """

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes: list = []

    def post(self, request):
        body = json.dumps(request.data)
        with connection.cursor() as cursor:
            for table in ("portal_apikey", "linking_customer"):
                cursor.execute(f"SELECT id FROM {table} ORDER BY id LIMIT 1")  # noqa: S608
                cursor.fetchone()
        with transaction.atomic(), connection.cursor() as cursor:
            for _ in range(3):
                cursor.execute(
                    f"INSERT INTO {BARE_TABLE} (body, received_at) VALUES (%s, %s) RETURNING id",  # noqa: S608
                    [body, timezone.now()],
                )
                (row_id,) = cursor.fetchone()
        return Response({"id": row_id}, status=201)


urlpatterns = [
    path("bench/bare-insert", BareInsert.as_view()),
    path("bench/round-trips-only", RoundTripsOnly.as_view()),
    *production_urlpatterns,
]
