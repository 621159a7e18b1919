from babel import Locale, UnknownLocaleError
from django import template

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
