"""Rules -> outbox: newly accepted events become notifications, in the same transaction.

For each event, every active link (an authorised, unexpired consent bound to a PSID)
whose consent covers the event's account and data scope gets one notification, if the
bank's policy sends that event at all; quiet hours defer it. The text is rendered now,
from the bank's template in the customer's language, and kept with the notification.
Everything is set-based: a batch of 1000 events costs a fixed handful of queries.
"""

import json
import logging
import threading
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from types import SimpleNamespace

from django.db import connection

from core.db.rows import (
    CHUNK,
    Statement,
    any_of,
    array_literal,
    array_type,
    arrays_of,
    arrays_usable,
    read_converter,
    row_params,
    statement_execute,
)
from linking.models import Account, Consent, Customer
from notifications.models import Event, Notification, Recipient
from notifications.services.queue import people_wake_statement
from portal.events import EVENT_SCOPES, DataScope, EventType
from portal.models import Bank, MessageTemplate, NotificationPolicy
from portal.policies import PolicyRules, decide
from portal.rendering import TemplateError, placeholders_in, render
from portal.selectors import template_pick

log = logging.getLogger(__name__)

State, Reason = Notification.State, Notification.Reason
# People per upsert: a full batch's in one statement, so queries do not grow with it.
INSERT_CHUNK = 2000
# Placeholders that show the balance: they leave the bank only under the balances scope.
BALANCE_PLACEHOLDERS = frozenset({"balance", "available"})


@dataclass(frozen=True)
class AcceptedEvent:
    """An event just stored, as the rules need it."""

    pk: int
    type: str
    customer_id: int
    account_id: int
    occurred_at: datetime
    data: Mapping


@dataclass(frozen=True)
class Link:
    consent_id: int
    account_id: int
    page_id: str
    psid: str
    scopes: frozenset[str]


@dataclass(frozen=True)
class OutboxPlan:
    """What `outbox_plan` decided: the statements writing the notifications (first
    superseding the stored balance notifications they replace, then raising their
    people's sequence counters), and how many of them are due now."""

    statements: list[Statement]
    due: int


@dataclass(slots=True)
class Planned:
    """A notification about to be written: the columns of its row that differ from one
    notification to the next, by attribute name (`PLANNED_FIELDS`).

    Planning a batch makes one per event and link, so it is a plain slotted object rather
    than a model instance, which costs several times more to build. What every planned
    notification shares (its bank, its creation and queueing time, and a fresh row's
    counters and flags) is written once per statement (`_outbox_statements`).
    """

    event_id: int
    consent_id: int
    account_id: int
    event_type: str
    page_id: str
    psid: str
    locale: str
    next_attempt_at: datetime
    reason: str
    data_categories: list[str]
    state: str = State.PENDING
    detail: str = ""
    text: str = ""
    finished_at: datetime | None = None
    sequence: int = 0


# The columns of a planned notification's own (`Planned`'s attributes), the sequence aside.
PLANNED_FIELDS = (
    "event",
    "consent",
    "account",
    "event_type",
    "page_id",
    "psid",
    "state",
    "reason",
    "detail",
    "locale",
    "text",
    "data_categories",
    "next_attempt_at",
    "finished_at",
)
# The columns every planned notification shares: given once per statement.
SHARED_FIELDS = ("bank", "created_at", "queued_at")
# A fresh notification's counters and flags, as SQL literals.
FRESH_ROW = {
    "attempts": "0",
    "lease_owner": "''",
    "waiting": "FALSE",
    "window_closed": "FALSE",
    "uncertain": "FALSE",
    "form": "''",
    "message_id": "''",
}


def message_data(
    event_type: str,
    data: Mapping,
    *,
    first_name: str,
    last4: str,
    currency: str,
    scopes: Iterable[str],
) -> dict:
    """What a template may show about an event: its data plus the customer and account.

    Balance figures are removed unless the consent covers balances: a transaction
    template that shows the balance must not leak it to a customer who only shared
    transactions.
    """
    values = dict(data)
    values["customer_first_name"] = first_name
    values["last4"] = data.get("card_last4") or last4
    values["currency"] = data.get("currency") or currency
    if event_type == EventType.BALANCE_UPDATED:
        values.setdefault("balance", data.get("ledger") or data.get("available"))
    elif event_type == EventType.RECEIPT_ISSUED:
        values.setdefault("amount", data.get("total"))
        items = data.get("items") or []
        values.setdefault(
            "description", ", ".join(str(i.get("title", "")) for i in items if isinstance(i, dict))
        )
    elif event_type == EventType.SHIPMENT_UPDATED:
        values["status"] = str(data.get("status", "")).replace("_", " ")
    elif event_type == EventType.FRAUD_ALERT:
        values.setdefault("description", data.get("location"))
    if DataScope.BALANCES not in set(scopes):
        for name in BALANCE_PLACEHOLDERS:
            values.pop(name, None)
    return values


def data_categories_for(event_type: str, placeholders: Iterable[str], scopes: Iterable[str]):
    """The consent scopes a message about `event_type` showing `placeholders` draws on."""
    categories = {EVENT_SCOPES[event_type]}
    if set(placeholders) & BALANCE_PLACEHOLDERS and DataScope.BALANCES in set(scopes):
        categories.add(DataScope.BALANCES)
    return sorted(categories)


def first_name(name: str) -> str:
    return (name or "").strip().split(" ", 1)[0]


def outbox_plan(
    *,
    bank: Bank,
    events: list[AcceptedEvent],
    now: datetime,
    customers: Mapping[int, tuple[str, str]] | None = None,
    accounts: Mapping[int, tuple[str, str]] | None = None,
    links: Mapping[int, list[Link]] | None = None,
    rules_stamp: int | None = None,
) -> OutboxPlan:
    """The notifications of `events`; call it inside the transaction storing them, and run
    the plan's statements there (`statements_run`, or with others in one round trip).

    Within a batch a person's notifications are numbered in
    the order the events occurred. A balance update supersedes the open (pending or held)
    balance notification of the same account and link when it is newer, and is itself
    dropped as superseded when an open one is newer. A caller that has already read the
    events' customers (`{pk: (name, locale)}`), accounts (`{pk: (last4, currency)}`) and
    the accounts' links (`links_join`, `links_collect`) passes them, saving their queries.
    One that has read the stamp of the bank's delivery rules (`rules_stamp`, see
    `portal.models.DeliveryRulesStamp`) passes it too: the rules kept for that stamp
    then serve without a query.
    """
    if not events:
        return OutboxPlan([], 0)
    if links is None:
        links = _links(bank, {e.account_id for e in events}, now)
    if not links:
        return OutboxPlan([], 0)
    customers = _known(customers, {e.customer_id for e in events}, Customer, "name", "locale")
    accounts = _known(accounts, {e.account_id for e in events}, Account, "last4", "currency")
    rules, templates = _rules_and_templates(bank, {e.type for e in events}, rules_stamp)
    chosen: dict[tuple[str, str], str | None] = {}
    planned: list[Planned] = []
    occurred: dict[int, tuple[datetime, int]] = {}
    for event in sorted(events, key=lambda e: (e.occurred_at, e.pk)):
        scope = EVENT_SCOPES.get(event.type)
        policy = rules.get(event.type)
        if scope is None or policy is None:
            continue
        name, locale = customers[event.customer_id]
        last4, currency = accounts[event.account_id]
        key = (event.type, locale)
        if key not in chosen:
            chosen[key] = template_pick(
                templates.get(event.type, {}), locale=locale, default_locale=bank.default_locale
            )
        template = chosen[key]
        for link in links.get(event.account_id, ()):
            if scope not in link.scopes:
                continue
            values = message_data(
                event.type,
                event.data,
                first_name=first_name(name),
                last4=last4,
                currency=currency,
                scopes=link.scopes,
            )
            decision = decide(policy, event.type, values, now)
            if not decision.send and decision.defer_until is None:
                continue
            notification = Planned(
                event_id=event.pk,
                consent_id=link.consent_id,
                account_id=event.account_id,
                event_type=event.type,
                page_id=link.page_id,
                psid=link.psid,
                locale=locale,
                next_attempt_at=decision.defer_until or now,
                reason=Reason.QUIET_HOURS if decision.defer_until else Reason.QUEUED,
                data_categories=[scope],
            )
            _render_into(notification, template, values, link.scopes, locale)
            occurred[id(notification)] = (event.occurred_at, event.pk)
            planned.append(notification)
    if not planned:
        return OutboxPlan([], 0)
    superseding = _coalesce_balances(planned, occurred, now)
    return OutboxPlan(
        superseding + _outbox_statements(bank, planned, now),
        due=sum(1 for n in planned if n.state == State.PENDING and n.next_attempt_at <= now),
    )


def _known(known: Mapping | None, pks: set[int], model, *names: str) -> Mapping:
    """`known` when it covers `pks`; else the `names` of those rows, read in one query."""
    if known is not None and pks <= known.keys():
        return known
    return {
        pk: tuple(values)
        for pk, *values in model.objects.filter(pk__in=pks).values_list("pk", *names)
    }


_POLICY_FIELDS = (
    "event_type",
    "enabled",
    "min_amount",
    "low_balance_below",
    "quiet_hours_start",
    "quiet_hours_end",
)


# `_POLICY_FIELDS` after the event type, as `PolicyRules` names them.
_RULE_NAMES = ("enabled", "min_amount", "low_balance_below", "quiet_start", "quiet_end")


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
            f"UNION ALL SELECT event_type, NULL, NULL, NULL, NULL, NULL, locale, body "
            f"FROM {quote(MessageTemplate._meta.db_table)} WHERE bank_id = %s AND {types_in}",
            [bank.pk, bank.pk, *params],
        )
        rows = cursor.fetchall()
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
def _policy_defaults() -> tuple:
    """A policy's values after its event type when the bank has stored none."""
    return tuple(
        NotificationPolicy._meta.get_field(name).get_default() for name in _POLICY_FIELDS[1:]
    )


def links_join(bank: Bank, now: datetime) -> tuple[str, list]:
    """The LEFT JOINs adding, to each row of accounts aliased `a`, its active links
    (authorised, unexpired, bound to a PSID): `l.consent_id, k.page_id, k.psid, k.scopes`,
    NULL `k.page_id` where there is none. SQL and parameters, for `links_collect`."""
    through = connection.ops.quote_name(Consent.accounts.through._meta.db_table)
    consent = connection.ops.quote_name(Consent._meta.db_table)
    return (
        f"LEFT JOIN {through} l ON l.account_id = a.id AND a.active "
        f"LEFT JOIN {consent} k ON k.id = l.consent_id AND k.bank_id = %s AND k.status = %s "
        f"AND k.psid <> '' AND (k.expires_at IS NULL OR k.expires_at > %s)",
        [bank.pk, Consent.Status.AUTHORISED, connection.ops.adapt_datetimefield_value(now)],
    )


LINK_COLUMNS = "l.consent_id, k.page_id, k.psid, k.scopes"


def links_collect(rows: Iterable[tuple]) -> dict[int, list[Link]]:
    """{account pk: its links, by consent} from `(account pk, *LINK_COLUMNS)` rows."""
    links: dict[int, list[Link]] = defaultdict(list)
    for account_id, consent_id, page_id, psid, scopes in rows:
        if page_id is None:  # no link, or not an active one
            continue
        if isinstance(scopes, str):  # a driver that does not decode jsonb
            scopes = json.loads(scopes)
        links[account_id].append(Link(consent_id, account_id, page_id, psid, frozenset(scopes)))
    for found in links.values():
        found.sort(key=lambda link: link.consent_id)
    return links


def _links(bank: Bank, account_ids: set[int], now: datetime) -> dict[int, list[Link]]:
    """Active links covering each of `account_ids` (plain SQL: it runs for every post)."""
    account = connection.ops.quote_name(Account._meta.db_table)
    join, join_params = links_join(bank, now)
    accounts_in, account_params = any_of("a.id", sorted(account_ids))
    with connection.cursor() as cursor:
        statement_execute(
            cursor,
            f"SELECT a.id, {LINK_COLUMNS} FROM {account} a {join} WHERE {accounts_in}",  # noqa: S608
            [*join_params, *account_params],
        )
        return links_collect(cursor.fetchall())


def _render_into(
    notification: Planned,
    template: str | None,
    values: dict,
    scopes: frozenset[str],
    locale: str,
) -> None:
    """Render `template` (the text of the bank's template, None without one) into the
    notification, or hold the notification with the reason it cannot be sent."""
    if template is None:
        notification.state, notification.reason = State.HELD, Reason.NO_TEMPLATE
        notification.detail = f"The bank has no {notification.event_type} message template."
        return
    try:
        notification.text = render(template, notification.event_type, values, locale=locale)
        used = placeholders_in(template)
    except TemplateError as exc:
        notification.state, notification.reason = State.HELD, Reason.RENDER_FAILED
        notification.detail = str(exc)[:300]
        return
    notification.data_categories = data_categories_for(notification.event_type, used, scopes)
    if not notification.text:
        notification.state, notification.reason = State.HELD, Reason.RENDER_FAILED
        notification.detail = "The template rendered an empty message."


def _coalesce_balances(
    planned: list[Planned], occurred: dict[int, tuple[datetime, int]], now: datetime
) -> list[Statement]:
    """Keep only the newest open balance notification per (account, link).

    Planned ones are superseded here; the statements returned supersede the stored ones
    and wake whoever waited behind them, to run before the new notifications are written.
    """
    newest: dict[tuple[int, int], Planned] = {}
    for notification in planned:
        if notification.event_type != EventType.BALANCE_UPDATED:
            continue
        if notification.state not in Notification.OPEN:
            continue
        pair = (notification.account_id, notification.consent_id)
        current = newest.get(pair)
        if current is None or occurred[id(notification)] > occurred[id(current)]:
            if current is not None:
                _supersede(current, now)
            newest[pair] = notification
        else:
            _supersede(notification, now)
    if not newest:
        return []
    older, people = [], set()
    for pk, account_id, consent_id, occurred_at, event_id, page_id, psid in _open_balances(
        {c for _, c in newest}
    ):
        incoming = newest.get((account_id, consent_id))
        if incoming is None:
            continue
        if (occurred_at, event_id) < occurred[id(incoming)]:
            older.append(pk)
            people.add((page_id, psid))
        else:
            _supersede(incoming, now)
    if not older:
        return []
    # whatever waited behind them may be next now
    return [_supersede_stored(older, now), people_wake_statement(people)]


# The open states written into the SQL, not passed as parameters: the prepared statement's
# one plan must see them to use the index of open notifications (`notification_open_by_link`).
OPEN_STATES = ", ".join(f"'{state}'" for state in Notification.OPEN)


def _open_balances(consent_ids: set[int]) -> list[tuple]:
    """The stored open balance notifications of these links: (pk, account, consent, when
    its event occurred, event, page, PSID). Plain SQL: a balance update runs it."""
    quote = connection.ops.quote_name
    consents_in, params = any_of("n.consent_id", sorted(consent_ids))
    with connection.cursor() as cursor:
        statement_execute(
            cursor,
            f"SELECT n.id, n.account_id, n.consent_id, e.occurred_at, n.event_id, n.page_id, "  # noqa: S608
            f"n.psid FROM {quote(Notification._meta.db_table)} n "
            f"JOIN {quote(Event._meta.db_table)} e ON e.id = n.event_id "
            f"WHERE {consents_in} AND n.event_type = %s AND n.state IN ({OPEN_STATES})",
            [*params, EventType.BALANCE_UPDATED.value],
        )
        rows = cursor.fetchall()
    convert = read_converter(Event._meta.get_field("occurred_at"))  # aware everywhere
    if convert is None:
        return rows
    return [
        (pk, account, consent, convert(when), *rest) for pk, account, consent, when, *rest in rows
    ]


def _supersede(notification: Planned, now: datetime) -> None:
    notification.state, notification.reason = State.SUPERSEDED, Reason.SUPERSEDED
    notification.finished_at = now


def _supersede_stored(pks: list[int], now: datetime) -> Statement:
    """The statement marking stored open notifications superseded, skipping any a worker
    is claiming now.

    A row locked by a claim is about to be sent; one locked by a cancellation is ending
    anyway. Skipping both (SKIP LOCKED) keeps the event's transaction from waiting on,
    or deadlocking with, a worker.
    """
    table = connection.ops.quote_name(Notification._meta.db_table)
    lock = (
        " FOR UPDATE SKIP LOCKED" if connection.features.has_select_for_update_skip_locked else ""
    )
    marks = ", ".join(["%s"] * len(pks))
    return (
        f"UPDATE {table} SET state = %s, reason = %s, finished_at = %s "  # noqa: S608
        f"WHERE id IN (SELECT id FROM {table} WHERE id IN ({marks}) "
        f"AND state IN (%s, %s){lock})",
        [
            State.SUPERSEDED,
            Reason.SUPERSEDED,
            connection.ops.adapt_datetimefield_value(now),
            *pks,
            *Notification.OPEN,
        ],
    )


def _outbox_statements(bank: Bank, planned: list[Planned], now: datetime) -> list[Statement]:
    """Write `planned` with the next sequence numbers of each person, in planned order, in
    statements that need no answer (one round trip, `statements_run`).

    `sequences_assign` in SQL: the people's counters are raised first (one upsert, people
    in sorted order as there, holding their rows until commit), then each notification's
    number is read back from its person's counter as it is inserted: the counter less
    how many of the person's planned notifications come after it.
    """
    wanted: dict[tuple[str, str], int] = defaultdict(int)
    for notification in planned:
        wanted[(notification.page_id, notification.psid)] += 1
    people = sorted(wanted)
    fields, select, columns, join = _notification_insert_parts(connection.vendor)
    params_of = row_params(fields)
    shared = row_params([Notification._meta.get_field(name) for name in SHARED_FIELDS])(
        SimpleNamespace(bank_id=bank.pk, created_at=now, queued_at=now)
    )
    left = dict(wanted)
    rows = []  # each notification's values, then how many of its person's come after it
    for notification in planned:
        person = (notification.page_id, notification.psid)
        left[person] -= 1
        rows.append((*params_of(notification), left[person]))
    if arrays_usable(len(planned)):
        arrayed = _outbox_arrays(bank, people, wanted, shared, rows)
        if arrayed is not None:
            return arrayed
    quote = connection.ops.quote_name
    recipients = quote(Recipient._meta.db_table)
    statements: list[Statement] = []
    for start in range(0, len(people), INSERT_CHUNK):
        chunk = people[start : start + INSERT_CHUNK]
        statements.append(
            (
                f"INSERT INTO {recipients} (bank_id, page_id, psid, last_sequence, "  # noqa: S608
                f"unreachable_reason) VALUES {', '.join(['(%s, %s, %s, %s, %s)'] * len(chunk))} "
                f"ON CONFLICT (page_id, psid) DO UPDATE SET "
                f"last_sequence = {recipients}.last_sequence + excluded.last_sequence",
                [v for person in chunk for v in (bank.pk, *person, wanted[person], "")],
            )
        )
    row = "(" + ", ".join(["%s"] * (len(fields) + 1)) + ")"
    for start in range(0, len(rows), CHUNK):
        chunk = rows[start : start + CHUNK]
        statements.append(
            (
                f"INSERT INTO {quote(Notification._meta.db_table)} ({columns}) "  # noqa: S608
                f"SELECT {select} FROM (VALUES {', '.join([row] * len(chunk))}) AS v "
                f"JOIN {recipients} r ON {join}",
                [*shared, *(value for values in chunk for value in values)],
            )
        )
    return statements


def _outbox_arrays(
    bank: Bank,
    people: list[tuple[str, str]],
    wanted: dict[tuple[str, str], int],
    shared: list,
    rows: list[tuple],
) -> list[Statement] | None:
    """`_outbox_statements`' two statements on PostgreSQL, each taking its rows as a
    column a parameter (`array_literal`), so each is one prepared statement whatever the
    number of people and notifications. None when a value cannot go in an array."""
    counters = [
        array_literal(page for page, _ in people),
        array_literal(person for _, person in people),
        array_literal(wanted[person] for person in people),
    ]
    notifications = [array_literal(column) for column in zip(*rows, strict=True)]
    if None in counters or None in notifications:
        return None
    fields, select, columns, join = _notification_insert_parts(connection.vendor)
    quote = connection.ops.quote_name
    recipients = quote(Recipient._meta.db_table)
    person = Recipient._meta.get_field
    sequence = Notification._meta.get_field("sequence")
    names = ", ".join(f"column{n}" for n in range(1, len(fields) + 2))
    return [
        (
            f"INSERT INTO {recipients} (bank_id, page_id, psid, last_sequence, "  # noqa: S608
            f"unreachable_reason) SELECT %s::bigint, v.page_id, v.psid, v.wanted, '' FROM "
            f"unnest(%s::{array_type(person('page_id'))}, %s::{array_type(person('psid'))}, "
            f"%s::bigint[]) AS v(page_id, psid, wanted) ON CONFLICT (page_id, psid) DO UPDATE "
            f"SET last_sequence = {recipients}.last_sequence + excluded.last_sequence",
            [bank.pk, *counters],
        ),
        (
            f"INSERT INTO {quote(Notification._meta.db_table)} ({columns}) "  # noqa: S608
            f"SELECT {select} FROM unnest({arrays_of((*fields, sequence))}) AS v({names}) "
            f"JOIN {recipients} r ON {join}",
            [*shared, *notifications],
        ),
    ]


@cache
def _notification_insert_parts(vendor: str) -> tuple[list, str, str, str]:
    """The fixed parts of `_outbox_statements`' INSERT … SELECT on `vendor`: the fields
    from VALUES, the SELECT list (the shared fields as parameters, the fresh row's
    literals, the fields from VALUES, then the sequence from the person's counter `r`),
    the column list in the same order, and the join to the counter.

    VALUES columns are column1, column2…; PostgreSQL types them from their literals, so
    each is cast to its column's type (a column of NULLs would otherwise be text).
    """
    postgresql = vendor == "postgresql"

    def typed(value: str, field) -> str:
        return f"CAST({value} AS {field.db_type(connection)})" if postgresql else value

    meta = Notification._meta
    fields = [meta.get_field(name) for name in PLANNED_FIELDS]
    values = {field.name: typed(f"v.column{n}", field) for n, field in enumerate(fields, 1)}
    later = f"v.column{len(fields) + 1}"  # how many of the person's come after this one
    select = [
        *(typed("%s", meta.get_field(name)) for name in SHARED_FIELDS),
        *FRESH_ROW.values(),
        *values.values(),
        f"r.last_sequence - {typed(later, meta.get_field('sequence'))}",
    ]
    names = [*SHARED_FIELDS, *FRESH_ROW, *PLANNED_FIELDS, "sequence"]
    return (
        fields,
        ", ".join(select),
        ", ".join(connection.ops.quote_name(meta.get_field(name).column) for name in names),
        f"r.page_id = {values['page_id']} AND r.psid = {values['psid']}",
    )


def sequences_assign(bank: Bank, planned: Sequence[Planned | Notification]) -> None:
    """Give each notification the next sequence numbers of its person, in planned order.

    One upsert for the batch, people in sorted order so that concurrent batches lock
    their rows in the same order; the locks are held until commit (see `Recipient`).
    """
    wanted: dict[tuple[str, str], int] = defaultdict(int)
    for notification in planned:
        wanted[(notification.page_id, notification.psid)] += 1
    people = sorted(wanted)
    table = connection.ops.quote_name(Recipient._meta.db_table)
    tops: dict[tuple[str, str], int] = {}
    with connection.cursor() as cursor:
        for start in range(0, len(people), INSERT_CHUNK):
            chunk = people[start : start + INSERT_CHUNK]
            params: list = []
            for page_id, psid in chunk:
                params += [bank.pk, page_id, psid, wanted[(page_id, psid)], ""]
            cursor.execute(
                f"INSERT INTO {table} (bank_id, page_id, psid, last_sequence, "  # noqa: S608
                f"unreachable_reason) VALUES {', '.join(['(%s, %s, %s, %s, %s)'] * len(chunk))} "
                f"ON CONFLICT (page_id, psid) DO UPDATE SET "
                f"last_sequence = {table}.last_sequence + excluded.last_sequence "
                f"RETURNING page_id, psid, last_sequence",
                params,
            )
            tops.update({(page_id, psid): top for page_id, psid, top in cursor.fetchall()})
    used: dict[tuple[str, str], int] = defaultdict(int)
    for notification in planned:
        person = (notification.page_id, notification.psid)
        used[person] += 1
        notification.sequence = tops[person] - wanted[person] + used[person]
