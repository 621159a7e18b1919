import datetime as dt

from django import template
from django.utils import timezone

from portal.languages import current_locale, format_date, format_datetime

register = template.Library()


@register.filter
def get_item(mapping, key):
    return mapping.get(key, key)


@register.filter
def local_date(value: dt.date | dt.datetime | None) -> str:
    """A date as the page's language writes it: "6 December 2026", "6 décembre 2026"."""
    if value is None:
        return ""
    if isinstance(value, dt.datetime) and timezone.is_aware(value):
        value = timezone.localtime(value)
    return format_date(value, current_locale())


@register.filter
def local_datetime(value: dt.datetime | None) -> str:
    """A moment as the page's language writes it: "6 Dec 2026, 14:05:00"."""
    if value is None:
        return ""
    return format_datetime(value, current_locale(), tzinfo=timezone.get_current_timezone())
