"""A bank's delivery rules and template texts, kept per process while their stamp holds."""

import threading
from collections import defaultdict
from functools import cache
from typing import Any, cast

from django.db import connection, models

from core.db.rows import any_of, statement_execute
from portal.events import EventType
from portal.models import Bank, MessageTemplate, NotificationPolicy
from portal.policies import PolicyRules

_POLICY_FIELDS = (
    "event_type",
    "enabled",
    "min_amount",
    "low_balance_below",
    "quiet_hours_start",
    "quiet_hours_end",
    "urgent",
)


# `_POLICY_FIELDS` after the event type, as `PolicyRules` names them.
_RULE_NAMES = ("enabled", "min_amount", "low_balance_below", "quiet_start", "quiet_end", "urgent")


Rules = tuple[dict[str, PolicyRules], dict[str, dict[str, str]]]
# {bank pk: (rules stamp, bank time zone, rules)}: the delivery rules last read for each
# bank in this process, the oldest dropped first beyond `KEPT_RULES_BANKS`.
_kept_rules: dict[int, tuple[int, str, Rules]] = {}
_kept_rules_lock = threading.Lock()  # threaded workers change it one at a time
KEPT_RULES_BANKS = 512


def _rules_and_templates(bank: Bank, event_types: set[str], stamp: int | None) -> Rules:
    """The bank's rules for every event type and its template texts for (at least)
    `event_types` (`_rules_and_templates_read`).

    With the stamp of the bank's delivery rules, those read at the same stamp serve
    again: the stamp moves with every change to them (`DeliveryRulesStamp`), so they are
    still the rules. A caller reads the stamp before this runs, so what is read here is
    at least as new as the stamp it is kept with. Without a stamp they are read.
    """
    if stamp is None:
        return _rules_and_templates_read(bank, event_types)
    kept = _kept_rules.get(bank.pk)
    if kept is not None and kept[0] == stamp and kept[1] == bank.timezone:
        return kept[2]
    rules = _rules_and_templates_read(bank, None)
    with _kept_rules_lock:
        _kept_rules.pop(bank.pk, None)
        while len(_kept_rules) >= KEPT_RULES_BANKS:
            _kept_rules.pop(next(iter(_kept_rules)))
        _kept_rules[bank.pk] = (stamp, bank.timezone, rules)
    return rules


def _rules_and_templates_read(bank: Bank, event_types: set[str] | None) -> Rules:
    """The bank's rules for every event type (`portal.selectors.policy_rules_for`: its
    stored policy, or the default one) and its template texts for `event_types` (all of
    them for None) as {event type: {locale: body}}, in one plain query.

    A policy's row has `enabled` (never NULL); a template's row has only the event type,
    locale and body. What is returned is never changed afterwards: it may be kept.
    """
    quote = connection.ops.quote_name
    types_in, params = (
        ("TRUE", []) if event_types is None else any_of("event_type", sorted(event_types))
    )
    with connection.cursor() as cursor:
        statement_execute(
            cursor,
            f"SELECT {', '.join(_POLICY_FIELDS)}, NULL, NULL "  # noqa: S608
            f"FROM {quote(NotificationPolicy._meta.db_table)} WHERE bank_id = %s "
            f"UNION ALL SELECT event_type, NULL, NULL, NULL, NULL, NULL, NULL, locale, body "
            f"FROM {quote(MessageTemplate._meta.db_table)} WHERE bank_id = %s AND {types_in}",
            [bank.pk, bank.pk, *params],
        )
        rows = cursor.fetchall()
    templates: defaultdict[str, dict[str, str]]
    stored, templates = {}, defaultdict(dict)
    for event_type, enabled, *policy, locale, body in rows:
        if enabled is None:
            templates[event_type][locale] = body
        else:
            stored[event_type] = (enabled, *policy)
    defaults = _policy_defaults()
    rules = {
        event_type: PolicyRules(
            event_type=event_type,
            **dict(zip(_RULE_NAMES, stored.get(event_type, defaults), strict=True)),
            timezone=bank.timezone,
        )
        for event_type in EventType.values
    }
    return rules, dict(templates)


@cache
def _policy_defaults() -> tuple[Any, ...]:
    """A policy's values after its event type when the bank has stored none."""
    return tuple(
        cast("models.Field[Any, Any]", NotificationPolicy._meta.get_field(name)).get_default()
        for name in _POLICY_FIELDS[1:]
    )
