import json

from babel import Locale, UnknownLocaleError
from django import template

from portal.models import AuditEvent
from portal.rendering import normalise_locale

register = template.Library()


@register.filter
def audit_value(value) -> str:
    """An audit detail as a person reads it: lists joined, booleans as yes/no."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if value is None or value == "":
        return "—"
    if isinstance(value, list):
        return ", ".join(audit_value(item) for item in value) or "—"
    if isinstance(value, dict):
        return "; ".join(f"{key}: {audit_value(item)}" for key, item in value.items()) or "—"
    return str(value)


@register.filter
def locale_name(code: str) -> str:
    """`fr` → “French (fr)”, as staff read a language; the bare code if Babel does not know it."""
    try:
        name = Locale.parse(normalise_locale(code)).get_display_name("en")
    except (UnknownLocaleError, ValueError):
        return code
    return f"{name} ({code})" if name else code


@register.filter
def status_tone(status: str) -> str:
    """The pill colour for a utility template's review status."""
    return {"APPROVED": "ok", "PENDING": "warn", "REJECTED": "bad"}.get(status, "neutral")


@register.filter
def audit_raw(event: AuditEvent) -> str:
    """What an entry recorded beyond who, what and when, as indented JSON (escaped when
    drawn like any text): its target, details and the data categories shared."""
    record = {
        "target": [event.target_type, event.target_id] if event.target_type else None,
        "details": event.details,
        "data_categories": event.data_categories,
    }
    return json.dumps(record, indent=2, ensure_ascii=False, sort_keys=True, default=str)
