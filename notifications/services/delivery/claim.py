"""Claiming: due heads of people's queues leased to one worker, `FOR UPDATE SKIP LOCKED`."""

import logging
import os
import socket
import time
import uuid
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from notifications.models import Notification
from notifications.services.delivery.jobs import Job, Reason, Result, State, Urgency
from notifications.services.echoes import SETTLED_DETAIL, echoes_for
from notifications.services.queue import (
    _dt,
    blocked_sql,
    open_floor,
    open_ids,
    open_ids_q,
    waiting_recheck,
)
from portal.models import MessengerIntegration

log = logging.getLogger(__name__)

PROMOTE_MAX = 500  # people with urgent notifications pending, looked up at a time
FRONT_MAX = 32  # the front a claim clears of waiting rows: 2 to this many times its size
SEND_DEADLINE_MARGIN = 25.0  # stop starting sends this long before the lease runs out…
SEND_DEADLINE_SHARE = 0.4  # …or this share of the lease, if that is shorter


def lease_owner_new() -> str:
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


def _claim(
    *, owner: str, limit: int, now: datetime, lease_seconds: float, front: int | None = None
) -> list[int]:
    """Lease up to `limit` due heads of their people's queues; returns their ids."""
    return claim_due(
        owner=owner, limit=limit, now=now, lease_seconds=lease_seconds, front=front
    ).ids


@dataclass(frozen=True)
class Claim:
    ids: list[int]
    set_aside: int  # rows found waiting behind an earlier message, flagged `waiting`
    floor: int = 0  # the open notifications' floor the claim looked from


def claim_due(
    *,
    owner: str,
    limit: int,
    now: datetime,
    lease_seconds: float,
    front: int | None = None,
    urgent_only: bool = False,
) -> Claim:
    """Lease up to `limit` due heads of their people's queues (`urgent_only`: urgent ones).

    First, rows among the `front` first of the due queue that sit behind an earlier
    message of the same person are marked `waiting` (PostgreSQL): they leave the due
    index until that message is done (`queue.people_wake`), so claims do not step over
    them again and again however deep a person's queue. Then the heads are leased,
    `FOR UPDATE SKIP LOCKED` so that workers never wait on each other; only rows that
    pass the head check are locked.
    """
    sql = _ClaimSql.for_now(now)
    flagged: list[int] = []
    if sql.postgres and not urgent_only:
        flagged = _waiting_flag(sql, now=now, front=front or 2 * limit)
    statement, params = sql.claim(
        owner=owner, limit=limit, now=now, lease_seconds=lease_seconds, urgent_only=urgent_only
    )
    for attempt in range(3):
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(statement, params)
                return Claim([row[0] for row in cursor.fetchall()], len(flagged), sql.floor)
        except IntegrityError:
            # Two claims raced for one person's queue (a quiet-hours update fell due
            # between them); the unique index refused the second. Claim again.
            log.info("claim raced on one person's queue; claiming again (%d)", attempt + 1)
    return Claim([], len(flagged), sql.floor)


@dataclass(frozen=True)
class _ClaimSql:
    """The pieces both claim statements share.

    Both statements pick from the due index in its order, the front or the live banks'
    ids computed once (an array), so the plan walks the index and stops at the limit
    instead of checking every due row for a head. Both look only from `floor`, the months
    that may hold open notifications (`queue.open_floor`), written in as a constant.
    """

    n: str  # the notifications table
    i: str  # the integrations table
    blocked: str
    blocked_params: list[Any]
    postgres: bool
    lock: str
    pick: str
    end: str
    floor: int

    @classmethod
    def for_now(cls, now: datetime) -> "_ClaimSql":
        floor = open_floor()
        blocked, blocked_params = blocked_sql("c", now, floor)
        postgres = connection.vendor == "postgresql"
        # PostgreSQL: the picked ids as an array, so the update finds them by primary key.
        pick, end = ("= ANY(ARRAY(", "))") if postgres else ("IN (", ")")
        return cls(
            n=connection.ops.quote_name(Notification._meta.db_table),
            i=connection.ops.quote_name(MessengerIntegration._meta.db_table),
            blocked=blocked,
            blocked_params=blocked_params,
            postgres=postgres,
            lock=" FOR UPDATE OF c SKIP LOCKED" if postgres else "",
            pick=pick,
            end=end,
            floor=floor,
        )

    def flag(self, *, now: datetime, front: int) -> tuple[str, list[Any]]:
        n, pick, end = self.n, self.pick, self.end
        statement = (
            f"UPDATE {n} SET waiting = TRUE WHERE {open_ids(self.floor)} "  # noqa: S608
            f"AND id = ANY(ARRAY(SELECT c.id FROM {n} c "
            f"WHERE c.id {pick}SELECT f.id FROM {n} f WHERE {open_ids(self.floor, 'f')} "
            f"AND f.state = %s AND NOT f.waiting AND f.next_attempt_at <= %s "
            f"ORDER BY f.next_attempt_at, f.id LIMIT %s{end} AND {open_ids(self.floor, 'c')} "
            f"AND c.state = %s AND NOT c.waiting AND {self.blocked}{self.lock})) RETURNING id"
        )
        return statement, [State.PENDING, _dt(now), front, State.PENDING, *self.blocked_params]

    def claim(
        self,
        *,
        owner: str,
        limit: int,
        now: datetime,
        lease_seconds: float,
        urgent_only: bool = False,
    ) -> tuple[str, list[Any]]:
        """The claim: due urgent heads first, oldest first, then routine ones.

        On PostgreSQL each class is picked from its own range of the due indexes
        (`notification_due_urgent`, then `notification_due`), the routine ones up to what
        the urgent ones left of `limit`: two index walks that stop at their limits, where
        one walk in class order would step over every routine row not yet due. Elsewhere
        (one writer at a time) one ordered pick does.
        """
        n, pick, end = self.n, self.pick, self.end
        set_lease = (
            f"UPDATE {n} SET state = %s, lease_owner = %s, lease_expires_at = %s, "  # noqa: S608
            f"send_started_at = NULL, digest = NULL WHERE {open_ids(self.floor)} AND id "
        )
        lease = [State.IN_FLIGHT, owner, _dt(now + timedelta(seconds=lease_seconds))]

        def due(urgency: str | None, limit_sql: str) -> tuple[str, list[Any]]:
            of_class = "" if urgency is None else f"AND c.urgency = '{urgency}' "
            order = (
                "c.next_attempt_at, c.id"
                if urgency is not None
                else f"CASE WHEN c.urgency = '{Urgency.URGENT.value}' THEN 0 ELSE 1 END, "
                "c.next_attempt_at, c.id"
            )
            return (
                f"SELECT c.id FROM {n} c WHERE {open_ids(self.floor, 'c')} "  # noqa: S608
                f"AND c.state = %s AND NOT c.waiting "
                f"{of_class}AND c.next_attempt_at <= %s "
                f"AND c.bank_id {pick}SELECT i.bank_id FROM {self.i} i WHERE i.status = %s{end} "
                f"AND NOT {self.blocked} ORDER BY {order} LIMIT {limit_sql}{self.lock}",
                [
                    State.PENDING,
                    _dt(now),
                    MessengerIntegration.Status.LIVE,
                    *self.blocked_params,
                ],
            )

        if not self.postgres:
            picked, params = due(Urgency.URGENT.value if urgent_only else None, "%s")
            return f"{set_lease}{pick}{picked}{end} RETURNING id", [*lease, *params, limit]
        urgent, urgent_params = due(Urgency.URGENT.value, "%s")
        if urgent_only:
            statement = f"{set_lease}{pick}{urgent}{end} RETURNING id"
            return statement, [*lease, *urgent_params, limit]
        routine, routine_params = due(Urgency.ROUTINE.value, "%s - (SELECT count(*) FROM u)")
        statement = (
            f"WITH u AS ({urgent}) {set_lease}= ANY(ARRAY(SELECT id FROM u) "  # noqa: S608
            f"|| ARRAY({routine})) RETURNING id"
        )
        return statement, [*urgent_params, limit, *lease, *routine_params, limit]


def _waiting_flag(sql: _ClaimSql, *, now: datetime, front: int) -> list[int]:
    """Flag `waiting` the rows of the front behind an earlier message; returns their ids."""
    statement, params = sql.flag(now=now, front=front)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(statement, params)
        flagged = [row[0] for row in cursor.fetchall()]
    # Now that the flags are visible, look again: a message that held one of these
    # back may have been recorded meanwhile, its wake-up not seeing the flag yet.
    waiting_recheck(flagged, now=now, floor=sql.floor)
    return flagged


def _jobs(ids: list[int]) -> list[Job]:
    rows = Notification.objects.filter(pk__any=ids).values_list(
        "id",
        "bank_id",
        "event_id",
        "event__event_id",
        "event_type",
        "consent_id",
        "account_id",
        "page_id",
        "psid",
        "locale",
        "text",
        "attempts",
        "window_closed",
        "queued_at",
        "data_categories",
        "event__data",
        "event__customer__name",
        "account__last4",
        "account__currency",
        "account__name",
        "urgency",
        "reason",
        "resent",
    )
    return sorted((Job(*row) for row in rows), key=lambda job: job.id)


class Claiming:
    """The pipeline's claims: leased in batches, prepared, queued per Page."""

    owner: str
    front: int
    floor: int  # the open notifications' floor of the last claim (`queue.open_floor`)
    marked: set[int]
    queues: dict[str, deque[Job]]
    order: deque[str]
    running: dict[int, Job]
    results: list[Result]

    if TYPE_CHECKING:  # the pipeline's other parts

        def prepare(self, jobs: list[Job]) -> list[Job]: ...
        def digests_gather(self, jobs: list[Job]) -> list[Job]: ...
        def finish(self, job: Job, state: str, reason: str, *, detail: str = "") -> None: ...

    def claim(self, size: int, *, urgent_only: bool = False) -> int:
        """Lease up to `size` due notifications and queue the ones that can go out.

        `urgent_only`: only urgent ones, which a pipeline that holds a backlog looks for
        between its claims, so that they need not wait for its next one.
        """
        lease = settings.NOTIFICATIONS_LEASE_SECONDS
        claimed_at = time.monotonic()
        front = self.front or 2 * size
        claim = claim_due(
            owner=self.owner,
            limit=size,
            now=timezone.now(),
            lease_seconds=lease,
            front=front,
            urgent_only=urgent_only,
        )
        ids = claim.ids
        self.floor = claim.floor
        # The claim cleared `send_started_at`: a retry claimed again by this pipeline is
        # marked afresh before it goes out.
        self.marked.difference_update(ids)
        if not urgent_only:
            # Deep queues put many waiting rows in front: look further while that lasts.
            crowded = claim.set_aside * 2 >= front
            self.front = min(FRONT_MAX * size, front * 2) if crowded else 2 * size
        if not ids:
            return 0
        jobs = self.echo_wait_over(_jobs(ids))
        margin = min(SEND_DEADLINE_MARGIN, lease * SEND_DEADLINE_SHARE)
        for job in jobs:
            job.send_until = claimed_at + lease - margin
        overtaking: set[str] = set()
        for job in self.digests_gather(self.prepare(jobs)):
            if job.page_id not in self.queues:
                self.queues[job.page_id] = deque()
                self.order.append(job.page_id)
            self.queues[job.page_id].append(job)
            if job.urgency == Urgency.URGENT:
                overtaking.add(job.page_id)
        for page in overtaking:
            # Urgent jobs go ahead of the routine ones this worker already holds for the
            # Page (a stable sort: each class keeps its order).
            queue = self.queues[page]
            self.queues[page] = deque(sorted(queue, key=lambda job: job.urgency != Urgency.URGENT))
        return len(ids)

    def echo_wait_over(self, jobs: list[Job]) -> list[Job]:
        """Uncertain sends whose wait for an echo is over: settled by an echo that came
        meanwhile, else sent again once (`resending`), or, if this was the resend already,
        dead-lettered as uncertain for staff to check. Returns the jobs to send."""
        awaiting = [job.id for job in jobs if job.reason == Reason.AWAITING_ECHO]
        if not awaiting:
            return jobs
        echoed = echoes_for(awaiting)
        forms = dict(Notification.objects.filter(pk__in=list(echoed)).values_list("pk", "form"))
        going: list[Job] = []
        for job in jobs:
            if job.reason != Reason.AWAITING_ECHO:
                going.append(job)
            elif job.id in echoed:
                mid, sent_at = echoed[job.id]
                job.form = forms.get(job.id, "")
                self.results.append(
                    Result(
                        job,
                        State.SENT,
                        "",
                        detail=SETTLED_DETAIL,
                        message_id=mid,
                        started_at=sent_at,
                        reached_platform=True,
                        echo_settled=True,
                    )
                )
            elif job.resent:
                self.finish(
                    job,
                    State.DEAD,
                    Reason.UNCERTAIN,
                    detail="No echo came for it, nor for the one resend: it may have reached "
                    "the person. Check before replaying.",
                )
            else:
                job.resending = True
                going.append(job)
        return going

    def promote_for_urgent(self) -> None:
        """Routine jobs held here whose person has an urgent notification pending go
        first, in the urgent lane.

        A person's urgent notification waits for the one message of theirs already
        claimed; on a saturated Page that one may sit behind hundreds of others in this
        pipeline's queue, then wait for a routine slot. Like a lock holder inheriting the
        priority of whoever waits for it, it goes ahead as if it were urgent
        (`Job.holds_back_urgent`), and its result is recorded at once so the urgent one
        can be claimed. Two small index scans find the people with urgent ones pending.
        """
        if not self.queues:
            return
        pending = Notification.objects.filter(
            open_ids_q(self.floor), state=State.PENDING, urgency=Urgency.URGENT
        )
        people = {
            *pending.filter(waiting=False, next_attempt_at__lte=timezone.now()).values_list(
                "page_id", "psid"
            )[:PROMOTE_MAX],
            *pending.filter(waiting=True).values_list("page_id", "psid")[:PROMOTE_MAX],
        }
        for page, queue in self.queues.items():
            for job in queue:
                job.holds_back_urgent = (page, job.psid) in people
            if any(job.holds_back_urgent for job in queue):
                self.queues[page] = deque(
                    sorted(
                        queue,
                        key=lambda job: (job.urgency != Urgency.URGENT, not job.holds_back_urgent),
                    )
                )

    def backlog(self) -> int:
        return sum(len(queue) for queue in self.queues.values()) + len(self.running)
