"""Planning: which notifications a batch of accepted events makes, superseding older ones."""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar, cast

from django.db import connection

from core.db.rows import Statement, any_of, read_converter, statement_execute
from linking.models import Account, Customer
from notifications.models import Event, Notification
from notifications.services.outbox.links import Link, _links
from notifications.services.outbox.messages import data_categories_for, first_name, message_data
from notifications.services.outbox.rules import _rules_and_templates
from notifications.services.outbox.write import Planned, _outbox_statements
from notifications.services.queue import people_wake_statement
from portal.events import EVENT_SCOPES, EventType
from portal.languages import formatting_locale
from portal.models import Bank
from portal.policies import PolicyRules, decide
from portal.rendering import TemplateError, placeholders_in, render
from portal.selectors import template_locale_pick

State, Reason, Urgency = Notification.State, Notification.Reason, Notification.Urgency


@dataclass(frozen=True)
class AcceptedEvent:
    """An event just stored, as the rules need it."""

    pk: int
    type: str
    customer_id: int
    account_id: int
    occurred_at: datetime
    data: Mapping[str, Any]


@dataclass(frozen=True)
class OutboxPlan:
    """What `outbox_plan` decided: the statements writing the notifications (first
    superseding the stored balance notifications they replace, then raising their
    people's sequence counters), how many of them are due now, and how many of those are
    urgent."""

    statements: list[Statement]
    due: int
    urgent_due: int = 0


def outbox_plan(
    *,
    bank: Bank,
    events: list[AcceptedEvent],
    now: datetime,
    customers: Mapping[int, tuple[str, str]] | None = None,
    accounts: Mapping[int, tuple[str, str, str]] | None = None,
    links: Mapping[int, list[Link]] | None = None,
    rules_stamp: int | None = None,
) -> OutboxPlan:
    """The notifications of `events`; call it inside the transaction storing them, and run
    the plan's statements there (`statements_run`, or with others in one round trip).

    Within a batch a person's notifications are numbered in
    the order the events occurred. A balance update supersedes the open (pending or held)
    balance notification of the same account and link when it is newer, and is itself
    dropped as superseded when an open one is newer. A caller that has already read the
    events' customers (`{pk: (name, locale)}`), accounts (`{pk: (last4, currency, name)}`) and
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
    people = _known(customers, {e.customer_id for e in events}, Customer, "name", "locale")
    account_rows = _known(
        accounts, {e.account_id for e in events}, Account, "last4", "currency", "name"
    )
    rules, templates = _rules_and_templates(bank, {e.type for e in events}, rules_stamp)
    chosen: dict[tuple[str, str], tuple[str, str | None]] = {}
    planned: list[Planned] = []
    occurred: dict[int, tuple[datetime, int]] = {}
    for event in sorted(events, key=lambda e: (e.occurred_at, e.pk)):
        scope = EVENT_SCOPES.get(event.type)
        policy = rules.get(event.type)
        if scope is None or policy is None:
            continue
        name, locale = people[event.customer_id]
        account = account_rows[event.account_id]
        key = (event.type, locale)
        if key not in chosen:
            chosen[key] = _template_chosen(templates.get(event.type, {}), locale, bank)
        text_locale, template = chosen[key]
        event_links = links.get(event.account_id, ())
        for notification in _event_plan(
            event, scope, policy, event_links, name, text_locale, account, template, now
        ):
            occurred[id(notification)] = (event.occurred_at, event.pk)
            planned.append(notification)
    if not planned:
        return OutboxPlan([], 0)
    superseding = _coalesce_balances(planned, occurred, now)
    due = [n for n in planned if n.state == State.PENDING and n.next_attempt_at <= now]
    return OutboxPlan(
        superseding + _outbox_statements(bank, planned, now),
        due=len(due),
        urgent_due=sum(1 for n in due if n.urgency == Urgency.URGENT),
    )


def _template_chosen(
    templates: Mapping[str, str], locale: str, bank: Bank
) -> tuple[str, str | None]:
    """The template text for a customer who reads `locale`, and the locale its message is
    written and formatted in: theirs, or, where the bank has no template in their language,
    the fallback template's own (text and formats together). Without any template, theirs."""
    picked = template_locale_pick(templates, locale=locale, default_locale=bank.default_locale)
    if picked is None:
        return locale, None
    return formatting_locale(locale, picked), templates[picked]


def _event_plan(
    event: AcceptedEvent,
    scope: str,
    policy: PolicyRules,
    links: Iterable[Link],
    name: str,
    locale: str,
    account: tuple[str, str, str],
    template: str | None,
    now: datetime,
) -> list[Planned]:
    """One event's notifications: one per link whose consent covers its scope, where the
    bank's policy sends it now or after quiet hours, in the class the policy gives it."""
    last4, currency, account_name = account
    planned: list[Planned] = []
    for link in links:
        if scope not in link.scopes:
            continue
        values = message_data(
            event.type,
            event.data,
            first_name=first_name(name),
            last4=last4,
            currency=currency,
            scopes=link.scopes,
            account_name=account_name,
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
            urgency=Urgency.URGENT if policy.is_urgent else Urgency.ROUTINE,
        )
        _render_into(notification, template, values, link.scopes, locale)
        planned.append(notification)
    return planned


Row = TypeVar("Row", bound=tuple[str, ...])


def _known(
    known: Mapping[int, Row] | None,
    pks: set[int],
    model: type[Customer] | type[Account],
    *names: str,
) -> Mapping[int, Row]:
    """`known` when it covers `pks`; else the `names` of those rows, read in one query."""
    if known is not None and pks <= known.keys():
        return known
    return {
        pk: cast(Row, tuple(values))
        for pk, *values in model.objects.filter(pk__in=pks).values_list("pk", *names)
    }


def _render_into(
    notification: Planned,
    template: str | None,
    values: dict[str, Any],
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
    # whatever waited behind them may be next now (`people` holds the people of `older`)
    return [_supersede_stored(older, now), people_wake_statement(people)]  # type: ignore[list-item]


# The open states written into the SQL, not passed as parameters: the prepared statement's
# one plan must see them to use the index of open notifications (`notification_open_by_link`).
OPEN_STATES = ", ".join(f"'{state}'" for state in Notification.OPEN)


def _open_balances(consent_ids: set[int]) -> list[tuple[Any, ...]]:
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
        rows: list[tuple[Any, ...]] = cursor.fetchall()
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
