"""What someone holding a dump of the database would read, and the forms a secret takes."""

import base64
import binascii

from django.db import connection

# Every column type that can carry a secret's characters or bytes.
TEXT_TYPES = ("text", "character varying", "character", "json", "jsonb", "bytea")


def stored_values() -> list[tuple[str, str]]:
    """(table.column, value) for every text, JSON and bytea value in every table."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name, column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND data_type = ANY(%s) "
            "ORDER BY table_name, column_name",
            [list(TEXT_TYPES)],
        )
        columns = cursor.fetchall()
        values = []
        for table, column, data_type in columns:
            as_text = (
                f"encode(\"{column}\", 'hex')" if data_type == "bytea" else f'"{column}"::text'
            )
            cursor.execute(f'SELECT {as_text} FROM "{table}" WHERE "{column}" IS NOT NULL')
            values += [(f"{table}.{column}", value) for (value,) in cursor.fetchall()]
    return values


def forms_of(secret: str | bytes) -> set[str]:
    """The secret in clear and as hex, base32 and base64 (each lower-cased), as a dump might
    hold it. Text secrets are also taken as their UTF-8 bytes."""
    raw = secret.encode() if isinstance(secret, str) else secret
    forms = {
        binascii.hexlify(raw).decode(),
        base64.b32encode(raw).decode(),
        base64.b32encode(raw).decode().rstrip("="),
        base64.b64encode(raw).decode(),
        base64.b64encode(raw).decode().rstrip("="),
        base64.urlsafe_b64encode(raw).decode().rstrip("="),
    }
    if isinstance(secret, str):
        forms.add(secret)
    return {form.lower() for form in forms if form}


def totp_seed_forms(hex_key: str) -> set[str]:
    """A TOTP seed as django-otp keeps it (hex) and as an authenticator shows it (base32)."""
    return forms_of(binascii.unhexlify(hex_key)) | {hex_key.lower()}


def columns_holding(forms: set[str]) -> list[str]:
    """The columns (table.column) where any of `forms` appears, case-insensitively."""
    return sorted(
        {where for where, value in stored_values() if any(form in value.lower() for form in forms)}
    )
