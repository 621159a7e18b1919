"""The production URLs plus the benchmark's references (bench settings only): the bare DRF
one-row insert, and a post's round trips (PostgreSQL and Redis) with nothing else.

Both are served under `API_PATH_PREFIX`, as the events API is, so that a request to them
passes through the same middleware as a posted event: the API skips the middleware only
browsers need (core/browser_middleware.py), and a reference that ran it would cost more
than the stack the API runs on."""

import json
from functools import cache

from django.conf import settings
from django.db import connection, transaction
from django.urls import path
from django.utils import timezone
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from bankside.urls import urlpatterns as production_urlpatterns
from core.db.rows import statement_execute, statements_run
from core.redis_line import RedisLine

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
    """The round trips of one posted event and nothing else: where the API's rate would
    top out if its own work (validation, rules, rendering, audit hashing) cost nothing.

    As a post does (its key is kept by the process: no query; a busy key's rate-limit
    tokens come leased, a few per Redis call, so no Redis command here): one query (the
    customer and account); the transaction's two round trips, the event's insert
    returning its row with `BEGIN`, then its other writes with the `COMMIT`
    (`statements_run(..., at_commit=True)`); after the commit, one Redis command (the
    delivery nudge). Plain inserts into one bench table stand in for the writes, three
    of them with the commit as a post's notification, audit entry and outcome.
    """

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes: list = []

    def post(self, request):
        line, packed = _redis_line()
        body = json.dumps(request.data)
        insert = f"INSERT INTO {BARE_TABLE} (body, received_at) VALUES (%s, %s) RETURNING id"  # noqa: S608
        with connection.cursor() as cursor:
            statement_execute(cursor, "SELECT id FROM linking_customer ORDER BY id LIMIT %s", [1])
            cursor.fetchone()
        with transaction.atomic():
            with connection.cursor() as cursor:
                statement_execute(cursor, insert, [body, timezone.now()])
                (row_id,) = cursor.fetchone()
            statements_run([(insert, [body, timezone.now()])] * 3, at_commit=True)
        line.call(packed)
        return Response({"id": row_id}, status=201)


@cache
def _redis_line() -> tuple[RedisLine, list[bytes]]:
    """The Redis connection of the API's rate limit and nudge, and a command as cheap."""
    line = RedisLine(settings.REDIS_URL)
    return line, line.pack("EXISTS", "bankside:bench:round-trips")


urlpatterns = [
    path("api/bench/bare-insert", BareInsert.as_view()),
    path("api/bench/round-trips-only", RoundTripsOnly.as_view()),
    *production_urlpatterns,
]
