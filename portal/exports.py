"""Streaming CSV and JSON Lines exports, for any number of rows in bounded memory.

Rows come from a queryset's `.iterator(chunk_size=…)` (a server-side cursor on
PostgreSQL) and leave as they are encoded: nothing holds the whole export.
"""

import csv
import json
from collections.abc import Callable, Iterable, Iterator, Sequence

from django.core.serializers.json import DjangoJSONEncoder
from django.http import StreamingHttpResponse

CSV, JSONL = "csv", "jsonl"
FORMATS = {CSV: "text/csv; charset=utf-8", JSONL: "application/jsonl; charset=utf-8"}
CHUNK_SIZE = 2000
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class _Line:
    """A file-like sink for `csv.writer` that hands back what it was given."""

    def write(self, value: str) -> str:
        return value


def _csv_cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        value = json.dumps(value, cls=DjangoJSONEncoder, ensure_ascii=False, sort_keys=True)
    elif not isinstance(value, str):
        value = str(value) if not hasattr(value, "isoformat") else value.isoformat()
    # A spreadsheet must not run a cell as a formula (CSV injection).
    return "'" + value if value.startswith(_FORMULA_START) else value


def csv_lines(rows: Iterable[dict], columns: Sequence[str]) -> Iterator[str]:
    writer = csv.writer(_Line())
    yield writer.writerow(columns)
    for row in rows:
        yield writer.writerow([_csv_cell(row.get(column)) for column in columns])


def jsonl_lines(rows: Iterable[dict], columns: Sequence[str]) -> Iterator[str]:
    for row in rows:
        document = {column: row.get(column) for column in columns}
        yield json.dumps(document, cls=DjangoJSONEncoder, ensure_ascii=False) + "\n"


def streaming_export(
    rows: Iterable[dict],
    *,
    columns: Sequence[str],
    fmt: str,
    filename: str,
    transform: Callable[[dict], dict] | None = None,
) -> StreamingHttpResponse:
    """A download of `rows` in `fmt` (`csv` or `jsonl`), encoded row by row as it is sent."""
    if transform is not None:
        rows = map(transform, rows)
    lines = csv_lines(rows, columns) if fmt == CSV else jsonl_lines(rows, columns)
    response = StreamingHttpResponse((line.encode() for line in lines), content_type=FORMATS[fmt])
    response["Content-Disposition"] = f'attachment; filename="{filename}.{fmt}"'
    return response
