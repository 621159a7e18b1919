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

Every statement here on open notifications looks only at the months that may hold them
(`open_ids`): from the floor that `OpenFloor` keeps, to this month.
"""

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from core.db import partitions
from core.db.rows import Statement, statement_execute
from notifications.models import Notification, OpenFloor

State, Reason, Urgency = Notification.State, Notification.Reason, Notification.Urgency


def _dt(value: datetime | None) -> Any:
    return None if value is None else connection.ops.adapt_datetimefield_value(value)


# The floor kept for a month that can have no open notification: the legacy partition's.
NO_FLOOR = 0
# How long before now the floor may be raised to at most (see `OpenFloor`): a transaction
# opening a row of the month before yesterday's takes the floor row's lock, so the sweep
# waits for it; one opening a row of a later month runs for less than this.
FLOOR_LAG = timedelta(days=2)
CEILING_LEAD = timedelta(days=1)


def open_floor() -> int:
    """The first id of the oldest month that may hold an open notification, pending or in
    flight (`OpenFloor`); 0 where tables are not partitioned.

    Statements on open notifications that do not name their ids write `open_ids(floor)`
    into their SQL, constants, so that PostgreSQL prunes the other months' partitions when
    it plans them: with a year of months kept, a claim otherwise plans, locks and probes
    every month's partition and each of its indexes, which doubled the database's CPU per
    delivered message. Read afresh for each claim and sweep: a floor lowered a moment ago
    (a replay of last month's dead letter) counts at once.
    """
    if not partitions.supported():
        return NO_FLOOR
    table = connection.ops.quote_name(OpenFloor._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT first_id FROM {table} WHERE id = 1")  # noqa: S608
        row = cursor.fetchone()
    return int(row[0]) if row else NO_FLOOR


def open_ceiling() -> int:
    """The first id past the months that may hold open notifications: next month's, or
    the month after it on a month's last day (another host's clock may be a little
    ahead). The months made ahead of need stay out of the plans."""
    return partitions.Month.of(timezone.now() + CEILING_LEAD).end_id


def open_ids(floor: int, alias: str = "") -> str:
    """SQL true for the ids of the months that may hold open notifications: from `floor`
    (`open_floor`'s) up to `open_ceiling`, both constants for the planner to prune with."""
    column = f"{alias}.id" if alias else "id"
    return f"{column} >= {int(floor)} AND {column} < {open_ceiling()}"


def open_ids_q(floor: int) -> Q:
    """`open_ids` for the ORM."""
    return Q(pk__gte=floor, pk__lt=open_ceiling())


def open_floor_raise(*, now: datetime | None = None) -> int:
    """Raise the floor past the months that hold no open notification any more, up to
    the month of two days ago at most; returns the floor.

    The floor row is locked first: a transaction opening an older row (its trigger takes
    the same lock to lower the floor) either committed before, and its row is seen here,
    or waits, and lowers the floor again after this. Each month is looked at through its
    partition's index of open rows (`notification_queue`), one row at most.
    """
    if not partitions.supported():
        return NO_FLOOR
    bound = partitions.Month.of((now or timezone.now()) - FLOOR_LAG).first_id
    floor = open_floor()
    if floor >= bound:
        return floor
    table = connection.ops.quote_name(OpenFloor._meta.db_table)
    n = connection.ops.quote_name(Notification._meta.db_table)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (id, first_id) VALUES (1, %s) ON CONFLICT (id) DO NOTHING",  # noqa: S608
            [NO_FLOOR],
        )
        cursor.execute(f"SELECT first_id FROM {table} WHERE id = 1 FOR UPDATE")  # noqa: S608
        floor = int(cursor.fetchone()[0])
        for partition in partitions.partitions_list(Notification._meta.db_table):
            low, high = partition.ids
            if high <= floor:
                continue
            if low >= bound:
                break
            cursor.execute(
                f"SELECT EXISTS (SELECT 1 FROM {n} WHERE id >= %s AND id < %s "  # noqa: S608
                f"AND state IN ('{State.PENDING.value}', '{State.IN_FLIGHT.value}'))",
                [max(low, floor), high],
            )
            if cursor.fetchone()[0]:
                break
            floor = high
        floor = min(max(floor, NO_FLOOR), bound)
        cursor.execute(f"UPDATE {table} SET first_id = %s WHERE id = 1", [floor])  # noqa: S608
    return floor


def blocked_sql(alias: str, now: datetime, floor: int = NO_FLOOR) -> tuple[str, list[Any]]:
    """SQL true when an open notification of the same person ahead of `alias` holds it
    back (looked for from `floor`, `open_floor`'s).

    Holding back: one in flight, or a pending one ahead of it (an earlier one of its
    class, or any urgent one if `alias` is routine), unless that one is only parked
    until quiet hours end (then a fraud alert behind it goes first). An urgent row and a
    routine row of one person can never both pass, so one claim never takes two.
    """
    n = connection.ops.quote_name(Notification._meta.db_table)
    sql = (
        f"EXISTS (SELECT 1 FROM {n} m WHERE m.page_id = {alias}.page_id "  # noqa: S608
        f"AND m.psid = {alias}.psid AND {open_ids(floor, 'm')} AND m.id <> {alias}.id "
        f"AND m.state IN (%s, %s) "
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


def people_wake(people: Iterable[tuple[str, str]], *, floor: int = NO_FLOOR) -> None:
    """Each of these people's next waiting notification may be their head now: their
    first waiting urgent one, or without one their first waiting one (looked for from
    `floor`: a pipeline's from its last claim; a floor raised since only costs the look
    a few more months)."""
    statement = people_wake_statement(people, floor=floor)
    if statement is not None:
        with connection.cursor() as cursor:
            statement_execute(cursor, *statement)


def people_wake_statement(
    people: Iterable[tuple[str, str]], *, floor: int = NO_FLOOR
) -> Statement | None:
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
        f"AND w.psid = v.column2 AND {open_ids(floor, 'w')} AND w.waiting{{urgent}} "
        f"AND w.state = %s "
        f"ORDER BY w.sequence LIMIT 1)"
    )
    urgent = head.format(urgent=f" AND w.urgency = '{Urgency.URGENT.value}'")
    return (
        f"UPDATE {n} SET waiting = FALSE WHERE {open_ids(floor)} "  # noqa: S608
        f"AND id {pick}SELECT COALESCE({urgent}, "
        f"{head.format(urgent='')}) FROM (VALUES {pairs}) AS v{end} "
        f"AND (state = %s) IS TRUE AND waiting IS TRUE",
        [
            State.PENDING,
            State.PENDING,
            *[v for person in sorted(people) for v in person],
            State.PENDING,
        ],
    )


def waiting_recheck(ids: list[int], *, now: datetime, floor: int | None = None) -> int:
    """Wake the flagged rows among `ids` that nothing holds back (any more); `floor`: the
    claim's that flagged them, else read afresh."""
    if not ids:
        return 0
    n = connection.ops.quote_name(Notification._meta.db_table)
    blocked, params = blocked_sql(n, now, open_floor() if floor is None else floor)
    marks = ", ".join(["%s"] * len(ids))
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {n} SET waiting = FALSE WHERE id IN ({marks}) AND waiting "  # noqa: S608
            f"AND state = %s AND NOT {blocked}",
            [*ids, State.PENDING, *params],
        )
        return int(cursor.rowcount)


def waiting_wake_stranded(
    *, now: datetime | None = None, urgent_only: bool = False, floor: int | None = None
) -> int:
    """Wake waiting notifications that nothing holds back any more (the sweeper's net);
    `urgent_only`: urgent ones only (what an urgent worker would claim).

    Rows another transaction has locked are skipped (PostgreSQL): it is flagging or
    waking them itself, and a sweep comes round again. Waiting for those locks instead
    made this many-row update deadlock with a claim flagging rows in another order, and
    an urgent worker's task end with the error.
    """
    n = connection.ops.quote_name(Notification._meta.db_table)
    floor = open_floor() if floor is None else floor  # the sweep's, just raised
    blocked, params = blocked_sql("c", now or timezone.now(), floor)
    of_class = f"AND c.urgency = '{Urgency.URGENT.value}' " if urgent_only else ""
    lock = " FOR UPDATE OF c SKIP LOCKED" if connection.vendor == "postgresql" else ""
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {n} SET waiting = FALSE WHERE {open_ids(floor)} "  # noqa: S608
            f"AND id IN (SELECT c.id FROM {n} c "
            f"WHERE {open_ids(floor, 'c')} AND c.waiting AND c.state = %s {of_class}"
            f"AND NOT {blocked}{lock})",
            [State.PENDING, *params],
        )
        return int(cursor.rowcount)
