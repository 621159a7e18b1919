from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from core import context
from core.context import RequestContext
from core.db.partitions import ID_FUNCTION, sequence_name
from core.db.rows import (
    Statement,
    any_of,
    array_literal,
    arrays_of,
    arrays_usable,
    column_type,
    insert_statements,
    json_text,
    statement_execute,
    statements_run,
)
from linking.models import Account, Customer
from notifications.models import Event, EventKey, Outcome, OutcomeFeed
from notifications.services.nudge import deliveries_nudge
from notifications.services.outbox import (
    LINK_COLUMNS,
    AcceptedEvent,
    Link,
    links_collect,
    links_join,
    outbox_plan,
)
from notifications.signals import events_accepted
from notifications.validation import CheckedEvent, event_check
from portal.audit import Actor
from portal.models import Bank, DeliveryRulesStamp
from portal.services.audit import AuditEntry, audit_append_last

MAX_BATCH = 1000
INSERT_CHUNK = MAX_BATCH  # one statement for any batch: queries do not grow with it
OUTCOME_FIELDS = (
    "bank",
    "type",
    "event",
    "notification",
    "event_ref",
    "event_type",
    "details",
    "occurred_at",
)
_INSERTED_FIELDS = (
    "bank",
    "event_id",
    "type",
    "customer",
    "account",
    "occurred_at",
    "data",
    "received_at",
    "status",
)
# Those that differ from one event to the next (`_varying`): between the bank and the
# time received, which with the status are the same for every event of a post.
_VARYING_FIELDS = _INSERTED_FIELDS[1:-2]


@dataclass(frozen=True, slots=True)
class OutcomeRow:
    """An outcome to append, by column: what `outcome_statements` writes for an `Outcome`
    (a batch appends one per event, and a model instance costs several times more)."""

    bank_id: int
    type: str
    event_ref: str
    event_type: str
    occurred_at: datetime
    event_id: int | None = None
    notification_id: int | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class EventResult:
    """What became of one posted event, in the order it was posted."""

    index: int
    id: str | None
    status: str  # accepted | duplicate | rejected
    reasons: list[dict[str, Any]] = field(default_factory=list)
    original: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        result: dict[str, Any] = {"index": self.index, "id": self.id, "status": self.status}
        if self.status == "rejected":
            result["reasons"] = self.reasons
        if self.status == "duplicate":
            result["original"] = self.original
        return result


@dataclass(frozen=True)
class IngestReport:
    results: list[EventResult]

    def count(self, status: str) -> int:
        return sum(1 for r in self.results if r.status == status)

    def as_dict(self) -> dict[str, Any]:
        return {
            "accepted": self.count("accepted"),
            "duplicates": self.count("duplicate"),
            "rejected": self.count("rejected"),
            "results": [r.as_dict() for r in self.results],
        }


@dataclass(frozen=True)
class Post:
    """One request's events, with who posted them and the request they came in (its id
    and source address, for the post's audit entry; None outside a request)."""

    actor: Actor
    events: list[Any]
    context: RequestContext | None = None


def event_ingest(*, actor: Actor, bank: Bank, events: list[Any]) -> IngestReport:
    """Store a batch of posted events; each is accepted, a duplicate or rejected on its own.

    `events_ingest_posts` for one post, made in the request being served.
    """
    (report,) = events_ingest_posts(
        bank=bank, posts=[Post(actor=actor, events=events, context=context.current())]
    )
    return report


def events_ingest_posts(*, bank: Bank, posts: Sequence[Post]) -> list[IngestReport]:
    """Store the events of several posts of one bank in one transaction; a report for
    each post, in order, as if each had been stored alone and in that order.

    Validation and lookups happen before the transaction; the transaction then holds a
    handful of statements whatever the number of events. The events' keys go in first
    (`EventKey`, `INSERT … ON CONFLICT (bank, reference) DO NOTHING RETURNING`) and, in
    the same statement, only the events whose keys went in (`_insert`): an id that is
    already stored (or is being stored by a concurrent post, which the insert waits for)
    comes back as a duplicate with the original outcome, and nothing about it changes; so
    does an id an earlier event (of the same post or an earlier one) carries. Keys are
    inserted in event-id order, so two transactions sharing ids take their locks in the
    same order and cannot deadlock. The delivery rules run in the same transaction
    (`outbox_plan`), so a stored event is processed: its notifications are in the outbox
    when the answer goes back. Each post gets one audit entry, with its own actor and
    request; `events_accepted` is sent and delivery is nudged after commit.
    """
    now = timezone.now()
    checked_of = [
        [event_check(raw, index=n, now=now) for n, raw in enumerate(post.events)] for post in posts
    ]
    every = [item for checked in checked_of for item in checked]
    references = _resolve_references(bank, [c for c in every if c.valid], now)

    # A valid event has its id, its customer's and account's keys and its time (the
    # checked event's fields are optional for the invalid ones).
    first_of: dict[str, CheckedEvent] = {}
    for item in every:
        if item.valid and item.event_id not in first_of:
            first_of[item.event_id] = item  # type: ignore[index]
    with transaction.atomic():
        inserted = _insert(bank, sorted(first_of.values(), key=lambda c: c.event_id), now)  # type: ignore[arg-type, return-value]
        stored_before = [i for i in first_of if i not in inserted]
        originals = (
            {
                row["event_id"]: {"status": row["status"], "received_at": row["received_at"]}
                for row in Event.objects.filter(
                    key__bank=bank, key__reference__in=stored_before
                ).values("event_id", "status", "received_at")
            }
            if stored_before
            else {}
        )
        for event_id in inserted:
            originals[event_id] = {"status": Event.Status.PROCESSED, "received_at": now}
        reports = [
            IngestReport([_result(item, first_of, inserted, originals) for item in checked])
            for checked in checked_of
        ]
        accepted = [item for item in first_of.values() if item.event_id in inserted]
        plan = outbox_plan(
            bank=bank,
            events=[
                AcceptedEvent(
                    pk=inserted[item.event_id],  # type: ignore[index]
                    type=item.type,
                    customer_id=item.customer_pk,  # type: ignore[arg-type]
                    account_id=item.account_pk,  # type: ignore[arg-type]
                    occurred_at=item.occurred_at,  # type: ignore[arg-type]
                    data=item.data,
                )
                for item in accepted
            ],
            now=now,
            customers=references.customers,
            accounts=references.accounts,
            links=references.links,
            rules_stamp=references.rules_stamp,
        )
        entries = [
            AuditEntry(
                action="events.ingested",
                target_type="notifications.event_batch",
                target_id="",
                details={
                    "accepted": report.count("accepted"),
                    "duplicates": report.count("duplicate"),
                    "rejected": report.count("rejected"),
                    "accepted_types": dict(
                        Counter(
                            item.type
                            for item, result in zip(checked, report.results, strict=True)
                            if result.status == "accepted"
                        ).most_common()
                    ),
                },
                actor=post.actor,
                context=post.context,
            )
            for post, checked, report in zip(posts, checked_of, reports, strict=True)
        ]
        outcomes = outcome_statements(
            bank=bank,
            outcomes=[
                OutcomeRow(
                    bank_id=bank.pk,
                    type=Outcome.Type.EVENT_ACCEPTED,
                    event_id=inserted[item.event_id],  # type: ignore[index]
                    event_ref=item.event_id,  # type: ignore[arg-type]
                    event_type=item.type,
                    occurred_at=now,
                )
                for item in accepted
            ]
            + [
                OutcomeRow(
                    bank_id=bank.pk,
                    type=Outcome.Type.EVENT_REJECTED,
                    event_ref=item.event_id or "",
                    event_type=item.type,
                    details={"reasons": item.reasons},
                    occurred_at=now,
                )
                for item in every
                if not item.valid
            ],
        )
        # The rest of the transaction only writes: the notifications, then the audit
        # entries (the bank's chain locked) and the outcomes (the feed locked), locks taken
        # last so one bank's concurrent posts queue behind each other briefly; on
        # PostgreSQL all of it goes with the COMMIT, in one round trip.
        audit_append_last(
            actor=posts[0].actor,
            bank_id=bank.pk,
            entries=entries,
            before=plan.statements,
            after=outcomes,
        )
        event_ids = sorted(inserted.values())
        if event_ids:
            transaction.on_commit(lambda: events_accepted.send(sender=Event, event_ids=event_ids))
        if plan.due:
            # An urgent update wakes the urgent queue's workers, which hold no backlog.
            deliveries_nudge(urgent=plan.urgent_due > 0, routine=plan.due > plan.urgent_due)
    return reports


def _result(
    item: CheckedEvent,
    first_of: dict[str, Any],
    inserted: dict[str, Any],
    originals: dict[str, Any],
) -> EventResult:
    """What became of one posted event."""
    if not item.valid:
        return EventResult(item.index, item.event_id, "rejected", item.reasons)
    if first_of[item.event_id] is item and item.event_id in inserted:  # type: ignore[index]
        return EventResult(item.index, item.event_id, "accepted")
    original = originals[item.event_id]  # type: ignore[index]
    return EventResult(
        item.index,
        item.event_id,
        "duplicate",
        original={"status": original["status"], "received_at": _iso(original["received_at"])},
    )


@dataclass
class References:
    """What the delivery rules need to know of the customers and accounts events name,
    and the stamp of the bank's delivery rules read with them (None where there is none,
    or nothing was read)."""

    customers: dict[int, tuple[str, str]]  # pk: (name, locale)
    accounts: dict[int, tuple[str, str, str]]  # pk: (last4, currency, name)
    links: dict[int, list[Link]]  # account pk: its active links
    rules_stamp: int | None = None


def _resolve_references(bank: Bank, valid: list[CheckedEvent], now: datetime) -> References:
    """Reject events naming a customer or account this bank does not have; read what the
    delivery rules need of the others, their accounts' links included, in one query.

    On PostgreSQL the same query reads the stamp of the bank's delivery rules
    (`portal.models.DeliveryRulesStamp`), so the rules kept for it serve only while they
    are current (`outbox_plan`)."""
    references = References({}, {}, {})
    if not valid:
        return references
    quote = connection.ops.quote_name
    customer, account = quote(Customer._meta.db_table), quote(Account._meta.db_table)
    join, join_params = links_join(bank, now)
    columns = (
        "a.id, a.external_id, a.customer_id, c.external_id, a.last4, a.currency, c.name, "
        "c.locale, a.name, {stamp}, " + LINK_COLUMNS
    )
    if connection.vendor == "postgresql":
        # Driven by the (customer, account) pairs named, each looked up through its unique
        # index (`LIMIT 1` keeps the look-ups per pair): a plan that holds whatever the
        # batch and table sizes, so the statement is prepared once and planned never.
        pairs = sorted({(c.customer_ref, c.account_ref) for c in valid})
        table = quote(DeliveryRulesStamp._meta.db_table)
        stamp = f"(SELECT stamp FROM {table} WHERE bank_id = %s)"  # noqa: S608
        sql = (
            f"SELECT {columns.format(stamp=stamp)} "  # noqa: S608
            f"FROM unnest(%s::varchar[], %s::varchar[]) AS r(cu, ac) "
            f"JOIN LATERAL (SELECT id, external_id, name, locale FROM {customer} "
            f"WHERE bank_id = %s AND external_id = r.cu LIMIT 1) c ON TRUE "
            f"JOIN LATERAL (SELECT id, external_id, customer_id, last4, currency, name, active "
            f"FROM {account} WHERE customer_id = c.id AND external_id = r.ac AND bank_id = %s "
            f"LIMIT 1) a ON TRUE {join}"
        )
        params = [
            bank.pk,
            [p[0] for p in pairs],
            [p[1] for p in pairs],
            bank.pk,
            bank.pk,
            *join_params,
        ]
    else:
        customers_in, customer_params = any_of(
            "c.external_id", sorted({c.customer_ref for c in valid})
        )
        accounts_in, account_params = any_of(
            "a.external_id", sorted({c.account_ref for c in valid})
        )
        sql = (
            f"SELECT {columns.format(stamp='NULL')} FROM {account} a "  # noqa: S608
            f"JOIN {customer} c ON c.id = a.customer_id {join} "
            f"WHERE a.bank_id = %s AND c.bank_id = %s AND {customers_in} AND {accounts_in}"
        )
        # No stamps here (PostgreSQL triggers write them): the rules are read for each post.
        params = [*join_params, bank.pk, bank.pk, *customer_params, *account_params]
    with connection.cursor() as cursor:
        statement_execute(cursor, sql, params)
        rows = cursor.fetchall()
    accounts = {}
    for row in rows:
        account_pk, account_ref, customer_pk, customer_ref, last4, currency, name, locale = row[:8]
        accounts[(customer_ref, account_ref)] = (customer_pk, account_pk)
        references.accounts[account_pk] = (last4, currency, row[8])
        references.customers[customer_pk] = (name, locale)
    if rows:  # the same stamp on every row
        references.rules_stamp = rows[0][9]
    references.links.update(links_collect((row[0], *row[10:]) for row in rows))
    unresolved = []
    for item in valid:
        found = accounts.get((item.customer_ref, item.account_ref))
        if found is None:
            unresolved.append(item)
        else:
            item.customer_pk, item.account_pk = found
    if not unresolved:
        return references
    known = set(
        Customer.objects.filter(
            bank=bank, external_id__in={c.customer_ref for c in unresolved}
        ).values_list("external_id", flat=True)
    )
    for item in unresolved:
        item.reasons = (
            [{"path": "account_id", "reason": "is not an account of this customer"}]
            if item.customer_ref in known
            else [{"path": "customer_id", "reason": "is not a customer of this bank"}]
        )
    return references


def _insert(bank: Bank, items: list[CheckedEvent], now: datetime) -> dict[str, int]:
    """Insert new events in bulk, skipping ids already stored; returns {event_id: pk}.

    Each event's key goes in first (`EventKey`, `ON CONFLICT DO NOTHING`, in event-id
    order), and only the events whose keys went in follow, under the id their key took.
    On PostgreSQL both are one statement; elsewhere (SQLite, one writer at a time) three.
    """
    if connection.vendor != "postgresql":
        return _insert_plain(bank, items, now)
    head, arrays, row, tail = _insert_parts()
    received_at = connection.ops.adapt_datetimefield_value(now)
    shared = [
        sequence_name(Event._meta.db_table),
        bank.pk,
        bank.pk,
        received_at,
        Event.Status.PROCESSED.value,
    ]
    with connection.cursor() as cursor:
        if arrays_usable(len(items)):
            # One statement whatever the number of events, a column a parameter: the bank,
            # the time received and the status are the same for every row.
            literals = [array_literal(column) for column in zip(*map(_varying, items), strict=True)]
            if None not in literals:
                statement_execute(cursor, arrays, [*literals, *shared])
                return {event_id: pk for pk, event_id in cursor.fetchall()}
        inserted: dict[str, int] = {}
        for start in range(0, len(items), INSERT_CHUNK):
            chunk = items[start : start + INSERT_CHUNK]
            statement_execute(
                cursor,
                f"{head}{', '.join([row] * len(chunk))}), {tail}",
                [*(value for item in chunk for value in _varying(item)), *shared],
            )
            inserted.update({event_id: pk for pk, event_id in cursor.fetchall()})
    return inserted


@cache
def _insert_parts() -> tuple[str, str, str, str]:
    """The fixed parts of `_insert`'s statement on PostgreSQL, built once: the head of its
    `VALUES` form, its whole `unnest` form (a column a parameter), a `VALUES` row, and the
    tail both share (the keys' insert, then the events')."""
    quote = connection.ops.quote_name
    field = Event._meta.get_field
    names = ", ".join(_VARYING_FIELDS)
    # Each of these names a field with a column.
    columns = ", ".join(quote(field(name).column) for name in _INSERTED_FIELDS)  # type: ignore[union-attr, arg-type]
    tail = (
        f"k AS (INSERT INTO {quote(EventKey._meta.db_table)} (event_id, bank_id, reference) "  # noqa: S608
        f"SELECT {ID_FUNCTION}(%s::regclass, clock_timestamp()), %s::bigint, v.event_id "
        f"FROM v ORDER BY v.event_id ON CONFLICT (bank_id, reference) DO NOTHING "
        f"RETURNING event_id AS pk, reference) "
        f"INSERT INTO {quote(Event._meta.db_table)} (id, {columns}) "
        f"SELECT k.pk, %s::bigint, {', '.join(f'v.{name}' for name in _VARYING_FIELDS)}, "
        f"%s::{column_type(field('received_at'))}, %s::{column_type(field('status'))} "
        f"FROM k JOIN v ON v.event_id = k.reference RETURNING id, {quote('event_id')}"
    )
    arrays = arrays_of(tuple(map(field, _VARYING_FIELDS)))
    row = "(" + ", ".join(f"%s::{column_type(field(name))}" for name in _VARYING_FIELDS) + ")"
    return (
        f"WITH v ({names}) AS (VALUES ",
        f"WITH v AS (SELECT * FROM unnest({arrays}) AS v({names})), {tail}",  # noqa: S608
        row,
        tail,
    )


def _insert_plain(bank: Bank, items: list[CheckedEvent], now: datetime) -> dict[str, int]:
    """`_insert` where a statement cannot insert into two tables (SQLite): the ids already
    held are read, the other events inserted, then their keys. The database takes one
    writer at a time; a concurrent post of the same id that slipped in between fails on
    the key's unique constraint, and its transaction changes nothing."""
    held = set(
        EventKey.objects.filter(
            bank=bank, reference__in=[item.event_id for item in items]
        ).values_list("reference", flat=True)
    )
    new = [item for item in items if item.event_id not in held]
    if not new:
        return {}
    stored = Event.objects.bulk_create(
        [
            Event(bank=bank, received_at=now, status=Event.Status.PROCESSED, **fields)
            for fields in map(_valid_fields, new)
        ]
    )
    EventKey.objects.bulk_create(
        [EventKey(event_id=event.pk, bank=bank, reference=event.event_id) for event in stored]
    )
    return {event.event_id: event.pk for event in stored}


def _valid_fields(item: CheckedEvent) -> dict[str, Any]:
    """The fields of a valid event's row that come from its post."""
    return {
        "event_id": item.event_id,
        "type": item.type,
        "customer_id": item.customer_pk,
        "account_id": item.account_pk,
        "occurred_at": item.occurred_at,
        "data": item.data,
    }


def _varying(item: CheckedEvent) -> tuple[Any, ...]:
    """The values of `_VARYING_FIELDS` of an event's row."""
    return (
        item.event_id,
        item.type,
        item.customer_pk,
        item.account_pk,
        connection.ops.adapt_datetimefield_value(item.occurred_at),
        json_text(item.data),
    )


def outcomes_record(*, bank: Bank, outcomes: Sequence[Outcome | OutcomeRow]) -> None:
    """Append to a bank's outcome feed, in id order that readers can trust.

    Takes the bank's feed row lock (an upsert) before the rows get their ids and keeps it
    until commit, so one bank's outcomes commit in id order: a reader that has seen id N
    will never later find a smaller id appear. Call it last in the transaction, to hold
    the lock as briefly as possible and always after other locks.
    """
    statements_run(outcome_statements(bank=bank, outcomes=outcomes))


def outcome_statements(*, bank: Bank, outcomes: Sequence[Outcome | OutcomeRow]) -> list[Statement]:
    """`outcomes_record` as statements, for a caller that runs them with others at the end
    of its transaction (`statements_run`), feed lock first."""
    if not outcomes:
        return []
    quote = connection.ops.quote_name
    table = quote(OutcomeFeed._meta.db_table)
    lock = (
        f"INSERT INTO {table} (bank_id, touched_at) VALUES (%s, %s) "  # noqa: S608
        f"ON CONFLICT (bank_id) DO UPDATE SET touched_at = EXCLUDED.touched_at",
        [bank.pk, connection.ops.adapt_datetimefield_value(timezone.now())],
    )
    return [lock, *insert_statements(Outcome, OUTCOME_FIELDS, outcomes)]


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")
