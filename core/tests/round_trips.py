"""What goes over the wire to PostgreSQL, one entry a round trip, for tests to read."""

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connections

from core.db.postgresql import base as backend


class RecordingCursor(backend.Cursor):
    """Records the text of each round trip it makes (with its parameters bound)."""

    sent: list[str] = []

    def execute(self, query, vars=None):
        try:
            return super().execute(query, vars)
        finally:
            RecordingCursor.sent.append(self.query.decode())


@contextmanager
def round_trips() -> Iterator[list[str]]:
    """The round trips of every connection opened inside the block, in order: the open
    ones are closed first, and again at the end."""
    connections.close_all()
    original, backend.Cursor = backend.Cursor, RecordingCursor
    RecordingCursor.sent = []
    try:
        yield RecordingCursor.sent
    finally:
        backend.Cursor = original
        connections.close_all()
