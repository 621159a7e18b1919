"""The order of each person's queue: which notification is their head, and who waits.

Per person (Page id and PSID) notifications go out one at a time: urgent ones first,
then routine ones, each class in `sequence` order. A pending notification is held back by
an open one of the same person ahead of it: one in flight, or a pending one before it in
that order (an earlier one of its class; any urgent one, for a routine one) unless that
one is only parked until quiet hours end. So a person's urgent message never waits for
their routine backlog, only for the one message already in flight.
Rows found held back at the front of the due queue are marked `waiting` and leave the due
index; when a person's message is done, their next waiting one is woken, urgent first.

Two workers can race here: one flags a row while another records the message that held
it back. The recorder wakes after its commit, and the flagger looks at its flags again
after theirs (`waiting_recheck`): whichever runs second sees the other's work, so the row
is always woken. Rows left waiting in any other way (a consent ended, a balance update
superseded) are woken there, and by the sweeper and idle workers, which wake any that
nothing holds back any more.
"""

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.db import connection
from django.utils import timezone

from core.db.rows import Statement, statement_execute
from notifications.models import Notification

State, Reason, Urgency = Notification.State, Notification.Reason, Notification.Urgency


def _dt(value: datetime | None) -> Any:
    return None if value is None else connection.ops.adapt_datetimefield_value(value)


def blocked_sql(alias: str, now: datetime) -> tuple[str, list[Any]]:
    """SQL true when an open notification of the same person ahead of `alias` holds it
    back.

    Holding back: one in flight, or a pending one ahead of it (an earlier one of its
    class, or any urgent one if `alias` is routine), unless that one is only parked
    until quiet hours end (then a fraud alert behind it goes first). An urgent row and a
    routine row of one person can never both pass, so one claim never takes two.
    """
    n = connection.ops.quote_name(Notification._meta.db_table)
    sql = (
        f"EXISTS (SELECT 1 FROM {n} m WHERE m.page_id = {alias}.page_id "  # noqa: S608
        f"AND m.psid = {alias}.psid AND m.id <> {alias}.id AND m.state IN (%s, %s) "
        f"AND (m.state = %s OR (((m.urgency = {alias}.urgency AND m.sequence < {alias}.sequence) "
        f"OR (m.urgency = %s AND {alias}.urgency <> %s)) "
        f"AND (m.next_attempt_at <= %s OR m.reason <> %s))))"
    )
    return sql, [
        State.PENDING,
        State.IN_FLIGHT,
        State.IN_FLIGHT,
        Urgency.URGENT,
        Urgency.URGENT,
        _dt(now),
        Reason.QUIET_HOURS,
    ]


def people_wake(people: Iterable[tuple[str, str]]) -> None:
    """Each of these people's next waiting notification may be their head now: their
    first waiting urgent one, or without one their first waiting one."""
    statement = people_wake_statement(people)
    if statement is not None:
        with connection.cursor() as cursor:
            statement_execute(cursor, *statement)


def people_wake_statement(people: Iterable[tuple[str, str]]) -> Statement | None:
    """`people_wake` as a statement to run later in the transaction (with others, in one
    round trip); None for nobody."""
    people = set(people)
    if not people:
        return None
    n = connection.ops.quote_name(Notification._meta.db_table)
    pairs = ", ".join(["(%s, %s)"] * len(people))
    # Driven by the people: one look-up of the waiting index per person, then the rows
    # by primary key, whatever the planner believes about how many rows wait or are
    # open: written as `IS TRUE`, the outer conditions match no partial index, which it
    # would otherwise scan whole beside the primary key (milliseconds per statement on
    # a large outbox with stale statistics).
    pick, end = ("= ANY(ARRAY(", "))") if connection.vendor == "postgresql" else ("IN (", ")")
    # The urgent one from its own small index, the first of all from the waiting index.
    head = (
        f"(SELECT w.id FROM {n} w WHERE w.page_id = v.column1 "  # noqa: S608
        f"AND w.psid = v.column2 AND w.waiting{{urgent}} AND w.state = %s "
        f"ORDER BY w.sequence LIMIT 1)"
    )
    urgent = head.format(urgent=f" AND w.urgency = '{Urgency.URGENT.value}'")
    return (
        f"UPDATE {n} SET waiting = FALSE WHERE id {pick}SELECT COALESCE({urgent}, "  # noqa: S608
        f"{head.format(urgent='')}) FROM (VALUES {pairs}) AS v{end} "
        f"AND (state = %s) IS TRUE AND waiting IS TRUE",
        [
            State.PENDING,
            State.PENDING,
            *[v for person in sorted(people) for v in person],
            State.PENDING,
        ],
    )


def waiting_recheck(ids: list[int], *, now: datetime) -> int:
    """Wake the flagged rows among `ids` that nothing holds back (any more)."""
    if not ids:
        return 0
    n = connection.ops.quote_name(Notification._meta.db_table)
    blocked, params = blocked_sql(n, now)
    marks = ", ".join(["%s"] * len(ids))
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {n} SET waiting = FALSE WHERE id IN ({marks}) AND waiting "  # noqa: S608
            f"AND state = %s AND NOT {blocked}",
            [*ids, State.PENDING, *params],
        )
        return int(cursor.rowcount)


def waiting_wake_stranded(*, now: datetime | None = None, urgent_only: bool = False) -> int:
    """Wake waiting notifications that nothing holds back any more (the sweeper's net);
    `urgent_only`: urgent ones only (what an urgent worker would claim).

    Rows another transaction has locked are skipped (PostgreSQL): it is flagging or
    waking them itself, and a sweep comes round again. Waiting for those locks instead
    made this many-row update deadlock with a claim flagging rows in another order, and
    an urgent worker's task end with the error.
    """
    n = connection.ops.quote_name(Notification._meta.db_table)
    blocked, params = blocked_sql("c", now or timezone.now())
    of_class = f"AND c.urgency = '{Urgency.URGENT.value}' " if urgent_only else ""
    lock = " FOR UPDATE OF c SKIP LOCKED" if connection.vendor == "postgresql" else ""
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {n} SET waiting = FALSE WHERE id IN (SELECT c.id FROM {n} c "  # noqa: S608
            f"WHERE c.waiting AND c.state = %s {of_class}AND NOT {blocked}{lock})",
            [State.PENDING, *params],
        )
        return int(cursor.rowcount)
