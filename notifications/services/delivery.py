"""Delivery: a worker claims due notifications in batches and pushes them to the Send API.

One `deliveries_run` call (the `deliver_due` task) runs a pipeline until nothing is due
or its time is up:

- **Claim** up to `NOTIFICATIONS_CLAIM_BATCH` due notifications of live integrations
  (`FOR UPDATE SKIP LOCKED`, so workers never wait on each other), each under a lease,
  and claim again whenever less than half a batch is left. Only the head of each
  person's queue is claimable (`services.queue`); a partial unique index refuses a
  second in-flight notification per person.
- **Prepare** in a few set-based reads: re-check the consent (an ended one cancels),
  choose the form the platform allows now (free-form UPDATE within 24 hours of the
  person's last message, else the bank's approved utility template, else held), build
  the Send API body.
- **Send** from a thread pool over the pooled httpx client. A call goes to a free thread
  right after its token is taken from the Page's bucket, shared by all workers
  (`notifications.page_limits`). Messages are marked `send_started_at`, a group at a
  time, before they go out.
- **Record** results every quarter second, in one transaction: the notification's new
  state, one `DeliveryAttempt` per call, one audit entry per message that reached the
  platform, and sent/failed/dead entries in the bank's outcome feed.

Errors by class: transient and throttled ones retry with exponential backoff and jitter
(`next_attempt_at`; a throttle also slows the Page's bucket); outside-window switches to
the utility template or holds; person unavailable fails and marks the person
unreachable; a bad token or restricted Page pauses the bank's integration; refused
requests are dead-lettered at once; and an answer that may hide a sent message (a
connection lost in flight, an unreadable success) is dead-lettered as uncertain for staff
to check, never resent blindly.
"""

import contextlib
import logging
import math
import os
import random
import socket
import threading
import time
import uuid
from collections import defaultdict, deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from queue import Empty, SimpleQueue
from types import SimpleNamespace

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

import messenger
from core.db.rows import instances_insert
from linking.models import Consent, Contact
from notifications import metrics
from notifications.conversation.texts import fraud_alert_quick_replies
from notifications.models import (
    DeliveryAttempt,
    DeliveryReceipt,
    Notification,
    Outcome,
    Recipient,
)
from notifications.page_limits import page_buckets, page_rate
from notifications.services.events import outcomes_record
from notifications.services.lifecycle import delivered_early_outcomes_record
from notifications.services.outbox import data_categories_for, first_name, message_data
from notifications.services.queue import (
    _dt,
    blocked_sql,
    people_wake,
    waiting_recheck,
    waiting_wake_stranded,
)
from portal.audit import Actor
from portal.events import EVENT_SCOPES
from portal.models import Bank, MessageTemplate, MessengerIntegration, UtilityTemplate
from portal.rendering import TemplateError, placeholders_in, render, utility_params
from portal.selectors import message_template_for, utility_template_for
from portal.services import integration_pause
from portal.services.audit import AuditEntry, audit_record_many
from portal.services.integration import page_credentials

log = logging.getLogger(__name__)

ENGINE = Actor.system("delivery engine")
State, Reason, Form = Notification.State, Notification.Reason, Notification.Form
AttemptOutcome = DeliveryAttempt.Outcome

WINDOW = timedelta(hours=24)
WINDOW_MARGIN = timedelta(minutes=2)  # a message sent at 23:59:59 must not arrive at 24:00:01
MAX_TOKEN_WAIT = 2.0  # wait longer for a Page's tokens than this, and the claim is released
FLUSH_EVERY = 0.25  # seconds between writes of results…
FLUSH_SIZE = 250  # …or this many results, whichever comes first
CLAIM_PAUSE = 0.02  # after a claim that was not full, look again this much later
FRONT_MAX = 32  # the front a claim clears of waiting rows: 2 to this many times its size
QUEUE_DEPTH = 4  # work the pool holds, in multiples of its threads
MARK_AHEAD = 4  # marked `send_started_at` a group at a time: this many times the threads
PAGE_SHARE_SECONDS = 0.1  # per Page, the pool holds this many seconds of its rate
SEND_DEADLINE_MARGIN = 25.0  # stop starting sends this long before the lease runs out…
SEND_DEADLINE_SHARE = 0.4  # …or this share of the lease, if that is shorter
RECEIPT_LIFETIME = timedelta(hours=1)


@dataclass
class Job:
    """A claimed notification on its way out."""

    id: int
    bank_id: int
    event_id: int
    event_ref: str
    event_type: str
    consent_id: int
    account_id: int
    page_id: str
    psid: str
    locale: str
    text: str
    attempts: int
    window_closed: bool
    queued_at: datetime
    data_categories: list[str]
    event_data: dict
    customer_name: str
    last4: str
    currency: str
    form: str = ""
    payload: dict | None = None
    creds: messenger.PageCredentials | None = None
    send_until: float = 0.0  # monotonic: not handed to the Send API after this


@dataclass
class Result:
    """What became of one claimed notification; `outcome` is set when a call was made."""

    job: Job
    state: str
    reason: str
    detail: str = ""
    next_attempt_at: datetime | None = None
    outcome: str = ""
    started_at: datetime | None = None
    latency_ms: int | None = None
    error_code: int | None = None
    error_subcode: int | None = None
    message_id: str = ""
    window_closed: bool | None = None
    uncertain: bool = False
    reached_platform: bool = False
    unreachable: bool = False

    @property
    def attempted(self) -> bool:
        return bool(self.outcome)


@dataclass
class RunReport:
    """What one `deliveries_run` did, for the task and the benchmarks."""

    batches: int = 0
    claimed: int = 0
    outcomes: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    more_due: bool = False

    def count(self, state: str) -> int:
        return self.outcomes.get(state, 0)


# The worker's thread pool: created on first use in each process.

_pool_lock = threading.Lock()
_pool: tuple[int, ThreadPoolExecutor] | None = None


def _send_pool() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None or _pool[0] != os.getpid():
            _pool = (
                os.getpid(),
                ThreadPoolExecutor(
                    max_workers=settings.NOTIFICATIONS_SEND_CONCURRENCY,
                    thread_name_prefix="notifications-send",
                ),
            )
        return _pool[1]


def lease_owner_new() -> str:
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


# Running


def deliveries_run(*, seconds: float | None = None, batch_size: int | None = None) -> RunReport:
    """Claim and send until nothing is due or `seconds` have passed; safe in any number
    of workers at once.

    One pipeline per call: it claims another batch whenever fewer than half a batch is
    waiting or in flight, so sending never stops for a batch boundary and a new event is
    picked up within milliseconds. `more_due` says whether work was still coming in when
    the time ran out, in which case the caller should run again.
    """
    budget = settings.NOTIFICATIONS_TASK_SECONDS if seconds is None else seconds
    size = batch_size or settings.NOTIFICATIONS_CLAIM_BATCH
    ends = time.monotonic() + budget
    report = RunReport()
    pipeline = _Pipeline(lease_owner_new(), report=report)
    next_claim, last_claimed, done_at_claim = 0.0, 0, 0
    try:
        while True:
            now_m = time.monotonic()
            may_claim = now_m < ends or not report.batches  # always at least one claim
            if may_claim and now_m >= next_claim and pipeline.backlog() <= size // 2:
                done_at_claim = sum(report.outcomes.values())
                last_claimed = pipeline.claim(size)
                report.batches += 1
                report.claimed += last_claimed
                next_claim = now_m + (0.0 if last_claimed >= size else CLAIM_PAUSE)
            if not pipeline.backlog():
                # A message finished since the last claim may have been all that held back
                # its person's next one: record it, then claim once more before stopping.
                pipeline.flush()
                finished_since = sum(report.outcomes.values()) > done_at_claim
                idle = last_claimed == 0 and not finished_since
                if now_m >= ends or (idle and not waiting_wake_stranded()):
                    break
                time.sleep(max(0.0, next_claim - time.monotonic()))
                continue
            pipeline.step()
    finally:
        pipeline.close()
    report.more_due = last_claimed > 0
    return report


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


def claim_due(
    *, owner: str, limit: int, now: datetime, lease_seconds: float, front: int | None = None
) -> Claim:
    """Lease up to `limit` due heads of their people's queues.

    First, rows among the `front` first of the due queue that sit behind an earlier
    message of the same person are marked `waiting` (PostgreSQL): they leave the due
    index until that message is done (`queue.people_wake`), so claims do not step over
    them again and again however deep a person's queue. Then the heads are leased,
    `FOR UPDATE SKIP LOCKED` so that workers never wait on each other; only rows that
    pass the head check are locked.
    """
    n = connection.ops.quote_name(Notification._meta.db_table)
    i = connection.ops.quote_name(MessengerIntegration._meta.db_table)
    blocked, blocked_params = blocked_sql("c", now)
    postgres = connection.vendor == "postgresql"
    lock = " FOR UPDATE OF c SKIP LOCKED" if postgres else ""
    # PostgreSQL: the picked ids as an array, so the update finds them by primary key.
    pick, end = ("= ANY(ARRAY(", "))") if postgres else ("IN (", ")")
    # Both statements pick from the due index in its order, the front or the live banks'
    # ids computed once (an array), so the plan walks the index and stops at the limit
    # instead of checking every due row for a head.
    flag = (
        f"UPDATE {n} SET waiting = TRUE WHERE id = ANY(ARRAY(SELECT c.id FROM {n} c "  # noqa: S608
        f"WHERE c.id {pick}SELECT f.id FROM {n} f WHERE f.state = %s AND NOT f.waiting "
        f"AND f.next_attempt_at <= %s ORDER BY f.next_attempt_at, f.id LIMIT %s{end} "
        f"AND c.state = %s AND NOT c.waiting AND {blocked}{lock})) RETURNING id"
    )
    flag_params = [State.PENDING, _dt(now), front or 2 * limit, State.PENDING, *blocked_params]
    claim = (
        f"UPDATE {n} SET state = %s, lease_owner = %s, lease_expires_at = %s, "  # noqa: S608
        f"send_started_at = NULL WHERE id {pick}SELECT c.id FROM {n} c "
        f"WHERE c.state = %s AND NOT c.waiting AND c.next_attempt_at <= %s "
        f"AND c.bank_id {pick}SELECT i.bank_id FROM {i} i WHERE i.status = %s{end} "
        f"AND NOT {blocked} ORDER BY c.next_attempt_at, c.id LIMIT %s{lock}{end} RETURNING id"
    )
    claim_params = [
        State.IN_FLIGHT,
        owner,
        _dt(now + timedelta(seconds=lease_seconds)),
        State.PENDING,
        _dt(now),
        MessengerIntegration.Status.LIVE,
        *blocked_params,
        limit,
    ]
    flagged: list[int] = []
    if postgres:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(flag, flag_params)
            flagged = [row[0] for row in cursor.fetchall()]
        # Now that the flags are visible, look again: a message that held one of these
        # back may have been recorded meanwhile, its wake-up not seeing the flag yet.
        waiting_recheck(flagged, now=now)
    for attempt in range(3):
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(claim, claim_params)
                return Claim([row[0] for row in cursor.fetchall()], len(flagged))
        except IntegrityError:
            # Two claims raced for one person's queue (a quiet-hours update fell due
            # between them); the unique index refused the second. Claim again.
            log.info("claim raced on one person's queue; claiming again (%d)", attempt + 1)
    return Claim([], len(flagged))


def _jobs(ids: list[int]) -> list[Job]:
    rows = Notification.objects.filter(pk__in=ids).values_list(
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
    )
    return sorted((Job(*row) for row in rows), key=lambda job: job.id)


class _Pipeline:
    """One worker's deliveries: claims prepared, sent under the Pages' limits, recorded."""

    def __init__(self, owner: str, *, report: RunReport | None) -> None:
        self.owner = owner
        self.report = report
        self.results: list[Result] = []
        self.flushed_at = time.monotonic()
        self.paused_banks: set[int] = set()
        self.banks: dict[int, Bank] = {}
        self.queues: dict[str, deque[Job]] = {}
        self.order: deque[str] = deque()
        self.not_before: dict[str, float] = {}
        self.running: dict[int, Job] = {}  # in the pool, by id
        self.answers: SimpleQueue[tuple[Job, _Sent]] = SimpleQueue()  # from the pool
        self.marked: set[int] = set()
        self.in_pool: dict[str, int] = defaultdict(int)
        self.front = 0
        self.limit = settings.NOTIFICATIONS_SEND_CONCURRENCY
        self.client = messenger.get_client()
        self.pool = _send_pool()
        self.buckets = page_buckets()

    def claim(self, size: int) -> int:
        """Lease up to `size` due notifications and queue the ones that can go out."""
        lease = settings.NOTIFICATIONS_LEASE_SECONDS
        claimed_at = time.monotonic()
        front = self.front or 2 * size
        claim = claim_due(
            owner=self.owner, limit=size, now=timezone.now(), lease_seconds=lease, front=front
        )
        ids = claim.ids
        # The claim cleared `send_started_at`: a retry claimed again by this pipeline is
        # marked afresh before it goes out.
        self.marked.difference_update(ids)
        # Deep queues put many waiting rows in front: look further while that lasts.
        crowded = claim.set_aside * 2 >= front
        self.front = min(FRONT_MAX * size, front * 2) if crowded else 2 * size
        if not ids:
            return 0
        jobs = _jobs(ids)
        margin = min(SEND_DEADLINE_MARGIN, lease * SEND_DEADLINE_SHARE)
        for job in jobs:
            job.send_until = claimed_at + lease - margin
        for job in self.prepare(jobs):
            if job.page_id not in self.queues:
                self.queues[job.page_id] = deque()
                self.order.append(job.page_id)
            self.queues[job.page_id].append(job)
        return len(ids)

    def backlog(self) -> int:
        return sum(len(queue) for queue in self.queues.values()) + len(self.running)

    # Preparing

    def prepare(self, jobs: list[Job]) -> list[Job]:
        """Re-check consents and choose each message's form; returns the jobs to send."""
        now = timezone.now()
        consents = {
            pk: (status, page_id, psid, expires_at, frozenset(scopes))
            for pk, status, page_id, psid, expires_at, scopes in Consent.objects.filter(
                pk__in={j.consent_id for j in jobs}
            ).values_list("pk", "status", "page_id", "psid", "expires_at", "scopes")
        }
        covered = set(
            Consent.accounts.through.objects.filter(
                consent_id__in={j.consent_id for j in jobs},
                account_id__in={j.account_id for j in jobs},
                account__active=True,
            ).values_list("consent_id", "account_id")
        )
        integrations = {
            i.bank_id: i
            for i in MessengerIntegration.objects.filter(bank_id__in={j.bank_id for j in jobs})
        }
        self.banks.update(Bank.objects.in_bulk({j.bank_id for j in jobs} - set(self.banks)))
        people = {(j.page_id, j.psid) for j in jobs}
        last_inbound = {
            (bank_id, page_id, psid): at
            for bank_id, page_id, psid, at in Contact.objects.filter(
                bank_id__in={j.bank_id for j in jobs},
                psid__in={psid for _, psid in people},
                page_id__in={p for p, _ in people},
            ).values_list("bank_id", "page_id", "psid", "last_inbound_at")
        }
        unreachable = set(
            Recipient.objects.filter(
                psid__in={psid for _, psid in people}, unreachable_at__isnull=False
            ).values_list("page_id", "psid")
        )
        utility_cache: dict[tuple[int, str, str], UtilityTemplate | None] = {}
        credentials: dict[int, messenger.PageCredentials | None] = {}
        ready = []
        for job in jobs:
            consent = consents.get(job.consent_id)
            integration = integrations.get(job.bank_id)
            scope = EVENT_SCOPES.get(job.event_type)
            if (
                consent is None
                or consent[0] != Consent.Status.AUTHORISED
                or (consent[1], consent[2]) != (job.page_id, job.psid)
                or (consent[3] is not None and consent[3] <= now)
                or scope not in consent[4]
                or (job.consent_id, job.account_id) not in covered
            ):
                self.finish(job, State.CANCELLED, Reason.LINK_ENDED)
            elif integration is None or integration.status != MessengerIntegration.Status.LIVE:
                self.release(job, Reason.INTEGRATION_PAUSED, now)
            elif integration.page_id != job.page_id:
                self.finish(job, State.DEAD, Reason.PAGE_CHANGED)
            elif (job.page_id, job.psid) in unreachable:
                self.finish(job, State.FAILED, Reason.PERSON_UNAVAILABLE)
            elif self.out_of_budget(job, now):
                self.finish(job, State.DEAD, Reason.BUDGET_EXHAUSTED)
            else:
                if job.bank_id not in credentials:
                    try:
                        credentials[job.bank_id] = page_credentials(integration)
                    except ValueError:
                        credentials[job.bank_id] = None
                job.creds = credentials[job.bank_id]
                if job.creds is None:
                    self.release(job, Reason.INTEGRATION_PAUSED, now + timedelta(minutes=1))
                    continue
                inbound = last_inbound.get((job.bank_id, job.page_id, job.psid))
                in_window = inbound is not None and now - inbound < WINDOW - WINDOW_MARGIN
                if self.choose_form(job, in_window, consent[4], utility_cache):
                    ready.append(job)
        return ready

    def choose_form(
        self,
        job: Job,
        in_window: bool,
        scopes: frozenset[str],
        cache: dict[tuple[int, str, str], UtilityTemplate | None],
    ) -> bool:
        """Free-form inside the window, the utility template outside it, else hold."""
        try:
            values = message_data(
                job.event_type,
                job.event_data,
                first_name=first_name(job.customer_name),
                last4=job.last4,
                currency=job.currency,
                scopes=scopes,
            )
            if in_window and not job.window_closed:
                if not job.text and not self.render_now(job, values, scopes):
                    return False
                job.form = Form.UPDATE
                job.payload = messenger.builders.text_message(
                    job.psid,
                    job.text,
                    messaging_type="UPDATE",
                    quick_replies=fraud_alert_quick_replies(job.event_type, job.id, job.locale),
                )
                return True
            key = (job.bank_id, job.event_type, job.locale)
            if key not in cache:
                cache[key] = self.utility_template(job)
            utility = cache[key]
            if utility is None:
                self.finish(
                    job,
                    State.HELD,
                    Reason.NO_ALLOWED_FORM,
                    detail=(
                        "Outside the 24-hour window, and no approved utility template for "
                        f"{job.event_type} ({job.locale}). It is sent when the customer next "
                        "writes, or when staff replay it after a template is approved."
                    ),
                )
                return False
            job.form = Form.UTILITY
            job.payload = messenger.builders.utility_template_message(
                job.psid,
                utility.name,
                utility.language,
                utility_params(utility.param_names, job.event_type, values, locale=job.locale),
            )
            job.data_categories = data_categories_for(job.event_type, utility.param_names, scopes)
            return True
        except (ValueError, TemplateError) as exc:
            self.finish(job, State.DEAD, Reason.RENDER_FAILED, detail=str(exc))
            return False

    def render_now(self, job: Job, values: dict, scopes: frozenset[str]) -> bool:
        """Render a notification queued without text (its template was missing then)."""
        template = message_template_for(
            bank=self.banks[job.bank_id], event_type=job.event_type, locale=job.locale
        )
        if template is None:
            self.finish(
                job,
                State.HELD,
                Reason.NO_TEMPLATE,
                detail=f"The bank has no {job.event_type} message template.",
            )
            return False
        job.text = render(template.body, job.event_type, values, locale=job.locale)
        job.data_categories = data_categories_for(
            job.event_type, placeholders_in(template.body), scopes
        )
        Notification.objects.filter(pk=job.id).update(
            text=job.text, data_categories=job.data_categories
        )
        return True

    def utility_template(self, job: Job) -> UtilityTemplate | None:
        template: MessageTemplate | None = message_template_for(
            bank=self.banks[job.bank_id], event_type=job.event_type, locale=job.locale
        )
        return utility_template_for(template=template) if template is not None else None

    @staticmethod
    def out_of_budget(job: Job, now: datetime, *, next_attempt: datetime | None = None) -> bool:
        horizon = job.queued_at + timedelta(hours=settings.NOTIFICATIONS_MAX_AGE_HOURS)
        return job.attempts >= settings.NOTIFICATIONS_MAX_ATTEMPTS or (next_attempt or now) > (
            horizon
        )

    # Sending

    def step(self) -> None:
        """Keep the thread pool fed, collect answers, record them now and then.

        The pool holds up to `QUEUE_DEPTH` times its threads in work, so sending goes on
        while this thread talks to the database. Each sending thread takes its token
        from the Page's bucket just before its call (`_send_one`): a call never waits
        after its token was granted, which is what keeps every one-second window at the
        platform within the limit. Per Page, the pool holds at most a tenth of a second
        of its rate, so a slow Page never occupies every thread. Messages are marked
        `send_started_at` a group at a time, before they enter the pool.
        """
        now_m = time.monotonic()
        room = QUEUE_DEPTH * self.limit - len(self.running)
        if self.queues and (room >= max(1, self.limit // 2) or not self.running):
            starting = self.pick(room, now_m)
            if starting:
                self.mark_ahead(starting)
                for job in starting:
                    self.in_pool[job.page_id] += 1
                    self.running[job.id] = job
                    self.pool.submit(self.send, job)
        pause = FLUSH_EVERY
        if self.queues and not self.running:
            soonest = min(self.not_before.get(page, 0.0) for page in self.queues)
            pause = min(pause, max(0.001, soonest - now_m))
        if self.running:
            with contextlib.suppress(Empty):
                self.collect(self.answers.get(timeout=pause))
                while True:
                    self.collect(self.answers.get_nowait())
        elif self.queues:
            time.sleep(pause)
        if len(self.results) >= FLUSH_SIZE or time.monotonic() - self.flushed_at >= FLUSH_EVERY:
            self.flush()

    def send(self, job: Job) -> None:
        """In a pool thread: send, and hand the answer back to the pipeline's thread."""
        try:
            sent = _send_one(self.client, self.buckets, job)
        except BaseException as exc:  # noqa: BLE001 - every job must come back
            sent = _Sent(None, None, error=exc)
        self.answers.put((job, sent))

    def collect(self, answer: "tuple[Job, _Sent]") -> None:
        job, sent = answer
        del self.running[job.id]
        self.in_pool[job.page_id] -= 1
        self.record(job, sent)

    def pick(self, room: int, now_m: float) -> list[Job]:
        """Up to `room` jobs for the pool, taking Pages in turn, within each Page's share."""
        starting: list[Job] = []
        for _ in range(len(self.order)):
            if not self.order or len(starting) >= room:
                break
            page = self.order[0]
            self.order.rotate(-1)
            queue = self.queues[page]
            while queue and queue[0].send_until <= now_m:  # too close to the lease's end
                self.release(queue.popleft(), Reason.RATE_LIMITED, timezone.now())
            if queue and queue[0].bank_id in self.paused_banks:
                self.release_all(queue, Reason.INTEGRATION_PAUSED, 0.0)
            elif queue and self.not_before.get(page, 0.0) <= now_m:
                share = max(2, math.ceil(page_rate(page)[0] * PAGE_SHARE_SECONDS))
                take = min(len(queue), room - len(starting), share - self.in_pool[page])
                starting += [queue.popleft() for _ in range(max(0, take))]
            if not queue:
                del self.queues[page]
                self.order.remove(page)
        return starting

    def mark_ahead(self, starting: list[Job]) -> None:
        """Mark these jobs, and the next ones in line, as handed to the Send API."""
        unmarked = [job for job in starting if job.id not in self.marked]
        if not unmarked:
            return
        room = MARK_AHEAD * self.limit - len(unmarked)
        for queue in self.queues.values():
            for job in queue:
                if room <= 0:
                    break
                if job.id not in self.marked:
                    unmarked.append(job)
                    room -= 1
        self.mark_started(unmarked)
        self.marked.update(job.id for job in unmarked)

    def close(self) -> None:
        """Wait for the calls in flight, put back what was not sent, record everything."""
        try:
            while self.running:
                self.collect(self.answers.get())
            for queue in self.queues.values():
                self.release_all(queue, Reason.RATE_LIMITED, 0.0)
            self.queues.clear()
            self.order.clear()
        finally:
            self.flush()

    def mark_started(self, jobs: list[Job]) -> None:
        """Record that these messages are being handed to the Send API, under our lease."""
        Notification.objects.filter(
            pk__in=[job.id for job in jobs], lease_owner=self.owner, state=State.IN_FLIGHT
        ).update(send_started_at=timezone.now())

    def release_all(self, queue: deque[Job], reason: str, wait_seconds: float) -> None:
        moment = timezone.now() + timedelta(seconds=wait_seconds)
        while queue:
            self.release(queue.popleft(), reason, moment)

    # Results

    def record(self, job: Job, sent: "_Sent") -> None:
        """Turn one Send API answer into a result, acting on what it says about the Page."""
        now = timezone.now()
        if sent.token_wait is not None:  # no token in time: back to the queue, untried
            self.not_before[job.page_id] = time.monotonic() + sent.token_wait
            queue = self.queues.get(job.page_id)
            if sent.token_wait > MAX_TOKEN_WAIT and queue:
                self.release_all(queue, Reason.RATE_LIMITED, sent.token_wait)
            self.release(job, Reason.RATE_LIMITED, now + timedelta(seconds=sent.token_wait))
            return
        exc = sent.error
        base = {
            "started_at": sent.started_at,
            "latency_ms": sent.latency_ms,
            "error_code": getattr(exc, "code", None),
            "error_subcode": getattr(exc, "subcode", None),
            "detail": getattr(exc, "user_message", "") if exc is not None else "",
            "reached_platform": exc is None or getattr(exc, "http_status", None) is not None,
        }
        job.attempts += 1
        if exc is None:
            result = Result(
                job, State.SENT, "", outcome=AttemptOutcome.SENT, message_id=sent.message_id, **base
            )
        elif isinstance(exc, messenger.ThrottledError):
            page_buckets().throttle(job.page_id, exc.retry_after_seconds)
            result = self.retry(
                job, now, Reason.THROTTLED, AttemptOutcome.THROTTLED, exc.retry_after_seconds, base
            )
        elif isinstance(exc, messenger.TransientError) and not exc.maybe_processed:
            result = self.retry(job, now, Reason.RETRYING, AttemptOutcome.TRANSIENT, None, base)
        elif isinstance(exc, messenger.OutsideWindowError) and job.form != Form.UTILITY:
            result = self.retry(
                job, now, Reason.OUTSIDE_WINDOW, AttemptOutcome.OUTSIDE_WINDOW, None, base
            )
            result.next_attempt_at, result.window_closed = now, True
        elif isinstance(exc, messenger.OutsideWindowError):
            result = Result(
                job,
                State.HELD,
                Reason.NO_ALLOWED_FORM,
                outcome=AttemptOutcome.OUTSIDE_WINDOW,
                **base,
            )
        elif isinstance(exc, messenger.PersonUnavailableError):
            result = Result(
                job,
                State.FAILED,
                Reason.PERSON_UNAVAILABLE,
                outcome=AttemptOutcome.PERSON_UNAVAILABLE,
                unreachable=True,
                **base,
            )
        elif isinstance(exc, (messenger.BadTokenError, messenger.PageRestrictedError)):
            self.pause(job.bank_id, exc)
            bad_token = isinstance(exc, messenger.BadTokenError)
            result = Result(
                job,
                State.PENDING,
                Reason.INTEGRATION_PAUSED,
                next_attempt_at=now,
                outcome=AttemptOutcome.BAD_TOKEN if bad_token else AttemptOutcome.PAGE_RESTRICTED,
                **base,
            )
        elif isinstance(exc, messenger.ConfigError | messenger.TagOveruseError):
            result = Result(job, State.DEAD, Reason.REFUSED, outcome=AttemptOutcome.CONFIG, **base)
        elif isinstance(exc, messenger.BadRequestError):
            result = Result(
                job, State.DEAD, Reason.REFUSED, outcome=AttemptOutcome.BAD_REQUEST, **base
            )
        else:
            # A lost connection after the request went out, an unreadable success or an
            # unknown failure: the message may have been sent. Never resend it blindly.
            if not isinstance(exc, messenger.MessengerError):
                log.error("send of notification %s failed unexpectedly", job.id, exc_info=exc)
                base["detail"] = f"{type(exc).__name__} while sending"
            result = Result(
                job,
                State.DEAD,
                Reason.UNCERTAIN,
                outcome=AttemptOutcome.UNCERTAIN,
                uncertain=True,
                **{**base, "reached_platform": True},
            )
        self.results.append(result)

    def retry(
        self,
        job: Job,
        now: datetime,
        reason: str,
        outcome: str,
        at_least: float | None,
        base: dict,
    ) -> Result:
        delay = retry_delay(job.attempts, at_least=at_least or 0.0)
        next_attempt = now + timedelta(seconds=delay)
        if self.out_of_budget(job, now, next_attempt=next_attempt):
            return Result(job, State.DEAD, Reason.BUDGET_EXHAUSTED, outcome=outcome, **base)
        return Result(
            job, State.PENDING, reason, next_attempt_at=next_attempt, outcome=outcome, **base
        )

    def pause(self, bank_id: int, error: messenger.MessengerError) -> None:
        """Stop the bank's sends: pause its integration (once) with the platform's reason."""
        if bank_id in self.paused_banks:
            return
        self.paused_banks.add(bank_id)
        integration = MessengerIntegration.objects.filter(bank_id=bank_id).first()
        if integration is None or integration.status == MessengerIntegration.Status.PAUSED:
            return
        with contextlib.suppress(ValidationError):  # paused meanwhile by someone else
            integration_pause(actor=ENGINE, integration=integration, reason=error.user_message)
        log.warning("integration of bank %s paused: %s", bank_id, type(error).__name__)

    def finish(self, job: Job, state: str, reason: str, *, detail: str = "") -> None:
        self.results.append(Result(job, state, reason, detail=detail[:300]))

    def release(self, job: Job, reason: str, at: datetime) -> None:
        """Back to the queue without a call: nothing was attempted."""
        self.results.append(Result(job, State.PENDING, reason, next_attempt_at=at))

    def flush(self) -> None:
        results, self.results = self.results, []
        self.flushed_at = time.monotonic()
        if not results:
            return
        self.marked.difference_update(result.job.id for result in results)
        results_record(owner=self.owner, results=results, banks=self.banks)
        if self.report is not None:
            for result in results:
                self.report.outcomes[result.state] += 1


@dataclass(frozen=True)
class _Sent:
    started_at: datetime | None
    latency_ms: int | None
    message_id: str = ""
    error: BaseException | None = None
    token_wait: float | None = None  # not sent: the Page had no token in time


def _send_one(client: messenger.GraphClient, buckets, job: Job) -> _Sent:
    """Take a token from the Page's bucket, then make the Send API call at once.

    Runs in a pool thread: no database access here. Waits for a token only briefly
    (`MAX_TOKEN_WAIT`, and never past the job's lease): a Page that is out of tokens for
    longer hands the job back.
    """
    while True:
        grant = buckets.take(job.page_id, 1)
        if grant.granted:
            break
        if grant.wait > MAX_TOKEN_WAIT or time.monotonic() + grant.wait >= job.send_until:
            return _Sent(None, None, token_wait=grant.wait)
        time.sleep(grant.wait)
    started_at = timezone.now()
    started = time.perf_counter()
    try:
        answer = client.send(job.creds, job.payload)
    except Exception as exc:  # noqa: BLE001 - classified by the caller
        return _Sent(started_at, _ms(started), error=exc)
    return _Sent(started_at, _ms(started), message_id=answer.message_id)


def _ms(started: float) -> int:
    return max(0, round((time.perf_counter() - started) * 1000))


def retry_delay(
    attempts: int,
    *,
    at_least: float = 0.0,
    base: float | None = None,
    cap: float | None = None,
) -> float:
    """Exponential backoff with jitter: half to all of base·2^(n-1), capped; seconds.

    `base` and `cap` default to the Send API's retry settings; other senders (the bank
    callbacks) pass their own.
    """
    base = settings.NOTIFICATIONS_RETRY_BASE_SECONDS if base is None else base
    cap = settings.NOTIFICATIONS_RETRY_MAX_DELAY_SECONDS if cap is None else cap
    ceiling = min(cap, base * 2 ** max(0, attempts - 1))
    return max(at_least, random.uniform(ceiling / 2, ceiling))  # noqa: S311 - jitter only


# Recording


_UPDATED = (  # (column, kind) written from a result, after the id
    ("state", "text"),
    ("reason", "text"),
    ("detail", "text"),
    ("next_attempt_at", "time"),
    ("attempts", "int"),
    ("form", "text"),
    ("message_id", "text"),
    ("sent_at", "time"),
    ("finished_at", "time"),
    ("window_closed", "bool"),
)
_FINAL = {State.SENT, State.FAILED, State.DEAD, State.CANCELLED}
ATTEMPT_FIELDS = (
    "notification",
    "number",
    "form",
    "started_at",
    "latency_ms",
    "outcome",
    "error_code",
    "error_subcode",
    "detail",
)
_OUTCOME_OF = {
    State.SENT: Outcome.Type.NOTIFICATION_SENT,
    State.FAILED: Outcome.Type.NOTIFICATION_FAILED,
    State.DEAD: Outcome.Type.NOTIFICATION_DEAD,
}


def results_record(*, owner: str, results: list[Result], banks: dict[int, Bank]) -> None:
    """Write a group of results in one transaction.

    The notification rows change only while the lease is still `owner`'s (a worker that
    overran its lease has been taken over, and the new owner decides). Attempts and
    audit entries are written regardless: the call happened, and if the message reached
    the platform, data left the bank. Locks are taken in the order every writer uses:
    notification rows, then the bank's audit chain, then its outcome feed.
    """
    now = timezone.now()
    with transaction.atomic():
        applied = _apply(owner, results, now)
        instances_insert(
            DeliveryAttempt,
            ATTEMPT_FIELDS,
            (
                _Row(
                    notification_id=r.job.id,
                    number=r.job.attempts,
                    form=r.job.form,
                    started_at=r.started_at,
                    latency_ms=r.latency_ms,
                    outcome=r.outcome,
                    error_code=r.error_code,
                    error_subcode=r.error_subcode,
                    detail=r.detail[:300],
                )
                for r in results
                if r.attempted
            ),
        )
        _recategorise([r for r in results if r.job.id in applied and r.attempted])
        _mark_unreachable([r for r in results if r.unreachable], now)
        early = _apply_early_receipts([r for r in results if r.job.id in applied and r.message_id])
        by_bank: dict[int, list[Result]] = defaultdict(list)
        for result in results:
            by_bank[result.job.bank_id].append(result)
        for bank_id in sorted(by_bank):
            audit_record_many(
                actor=ENGINE,
                bank_id=bank_id,
                entries=[_audit_entry(r) for r in by_bank[bank_id] if r.reached_platform],
            )
        for bank_id in sorted(by_bank):
            outcomes = [
                _Row(
                    bank_id=bank_id,
                    type=_OUTCOME_OF[r.state],
                    event_id=r.job.event_id,
                    notification_id=r.job.id,
                    event_ref=r.job.event_ref,
                    event_type=r.job.event_type,
                    details={"reason": r.reason, "form": r.job.form, "attempts": r.job.attempts},
                    occurred_at=now,
                )
                for r in by_bank[bank_id]
                if r.job.id in applied and r.state in _OUTCOME_OF
            ]
            bank = banks.get(bank_id) or Bank.objects.get(pk=bank_id)
            outcomes_record(bank=bank, outcomes=outcomes)
        delivered_early_outcomes_record(results=results, applied=early, banks=banks)
    # After commit, so that a claim flagging one of these people's next messages either
    # saw this commit, or flagged them before this wake-up looks (see `queue`).
    people_wake((r.job.page_id, r.job.psid) for r in results if r.state != State.PENDING)
    metrics.results_observe(results)


class _Row(SimpleNamespace):
    """A row for `instances_insert`: the fields it writes, without a model instance's
    cost (three rows per message sent)."""


def _apply(owner: str, results: list[Result], now: datetime) -> set[int]:
    """Update the notifications from `results` in one statement; returns the ids changed."""
    pg = connection.vendor == "postgresql"
    casts = {
        "text": "text",
        "time": "timestamptz" if pg else "text",
        "int": "integer",
        "bool": "boolean" if pg else "integer",
    }
    table = connection.ops.quote_name(Notification._meta.db_table)
    assignments = ", ".join(
        f"{column} = CAST(v.column{n} AS {casts[kind]})"
        for n, (column, kind) in enumerate(_UPDATED, start=2)
    )
    flag = len(_UPDATED) + 2  # the last column: whether this result makes it uncertain
    row = "(" + ", ".join(["%s"] * flag) + ")"
    applied: set[int] = set()
    with connection.cursor() as cursor:
        for start in range(0, len(results), 500):
            chunk = results[start : start + 500]
            params: list = []
            for r in chunk:
                final = r.state in _FINAL
                params += [
                    r.job.id,
                    r.state,
                    r.reason,
                    (r.detail or "")[:300],
                    _dt(r.next_attempt_at if r.state == State.PENDING else None),
                    r.job.attempts,
                    r.job.form,
                    r.message_id,
                    _dt(r.started_at if r.state == State.SENT else None),
                    _dt(now if final else None),
                    r.job.window_closed if r.window_closed is None else r.window_closed,
                    r.uncertain,
                ]
            cursor.execute(
                f"UPDATE {table} SET {assignments}, lease_owner = '', "  # noqa: S608
                f"lease_expires_at = NULL, send_started_at = NULL, waiting = FALSE, "
                f"uncertain = {table}.uncertain OR CAST(v.column{flag} AS {casts['bool']}) "
                f"FROM (VALUES {', '.join([row] * len(chunk))}) AS v "
                f"WHERE {table}.id = v.column1 AND {table}.lease_owner = %s "
                f"AND {table}.state = %s RETURNING {table}.id",
                [*params, owner, State.IN_FLIGHT],
            )
            applied.update(pk for (pk,) in cursor.fetchall())
    lost = len(results) - len(applied)
    if lost:
        log.warning("%d results came back after their lease was taken over", lost)
    return applied


def _recategorise(results: list[Result]) -> None:
    """Store the data categories actually sent where the form changed them (utility)."""
    groups: dict[tuple[str, ...], list[int]] = defaultdict(list)
    for result in results:
        if result.job.form == Form.UTILITY:
            groups[tuple(result.job.data_categories)].append(result.job.id)
    for categories, pks in groups.items():
        Notification.objects.filter(pk__in=pks).update(data_categories=list(categories))


def _mark_unreachable(results: list[Result], now: datetime) -> None:
    for result in results:
        Recipient.objects.filter(page_id=result.job.page_id, psid=result.job.psid).update(
            unreachable_at=now, unreachable_reason=result.detail[:300]
        )


def _apply_early_receipts(results: list[Result]) -> set[int]:
    """Delivery receipts that arrived before the message id was committed; returns the
    notifications they marked delivered."""
    by_mid = {r.message_id: r.job.id for r in results}
    if not by_mid:
        return set()
    receipts = list(
        DeliveryReceipt.objects.filter(message_id__in=list(by_mid)).values_list(
            "message_id", "delivered_at"
        )
    )
    for message_id, delivered_at in receipts:
        Notification.objects.filter(pk=by_mid[message_id], state=State.SENT).update(
            state=State.DELIVERED, delivered_at=delivered_at
        )
    if receipts:
        DeliveryReceipt.objects.filter(message_id__in=[m for m, _ in receipts]).delete()
    return {by_mid[message_id] for message_id, _ in receipts}


def _audit_entry(result: Result) -> AuditEntry:
    """Data left the bank: a message sent, refused by the platform, or perhaps sent."""
    job = result.job
    if result.state == State.SENT:
        action = "notification.sent"
    elif result.uncertain:
        action = "notification.send_uncertain"
    else:
        action = "notification.send_failed"
    return AuditEntry(
        action=action,
        target_type="linking.consent",
        target_id=str(job.consent_id),
        details={
            "notification": job.id,
            "event": job.event_ref,
            "event_type": job.event_type,
            "form": job.form,
            "attempt": job.attempts,
            "outcome": result.outcome,
            "message_id": result.message_id,
            "page_id": job.page_id,
            "psid": job.psid,
        },
        data_categories=job.data_categories,
    )


# Lease takeover and the sweeper


@dataclass(frozen=True)
class SweepReport:
    taken_over: int
    uncertain: int
    due: int


def leases_take_over(*, now: datetime | None = None, limit: int = 1000) -> tuple[int, int]:
    """Put claims whose lease ran out back in the queue; returns (taken over, uncertain).

    A claim whose message was never handed to the Send API simply goes back. One whose
    message was (`send_started_at`) may have reached the person before its worker died;
    it is queued again, since losing it is worse than a possible duplicate, but flagged
    `uncertain`, its lost attempt recorded and audited, and counted.
    """
    now = now or timezone.now()
    with transaction.atomic():
        lost = list(
            Notification.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(state=State.IN_FLIGHT, lease_expires_at__lt=now)
            .order_by("lease_expires_at")
            .values_list(
                "pk",
                "bank_id",
                "consent_id",
                "event__event_id",
                "event_type",
                "page_id",
                "psid",
                "attempts",
                "form",
                "send_started_at",
                "data_categories",
                "lease_owner",
            )[:limit]
        )
        if not lost:
            return 0, 0
        started = [row for row in lost if row[9] is not None]
        fresh = [row[0] for row in lost if row[9] is None]
        reset = {
            "state": State.PENDING,
            "next_attempt_at": now,
            "lease_owner": "",
            "lease_expires_at": None,
            "send_started_at": None,
        }
        Notification.objects.filter(pk__in=fresh).update(**reset)
        for pk, _, _, _, _, _, _, attempts, *_ in started:
            Notification.objects.filter(pk=pk).update(
                **reset,
                attempts=attempts + 1,
                uncertain=True,
                reason=Reason.WORKER_LOST,
                detail="The worker sending it died; resent, so it may arrive twice.",
            )
        DeliveryAttempt.objects.bulk_create(
            [
                DeliveryAttempt(
                    notification_id=pk,
                    number=attempts + 1,
                    form=form,
                    started_at=started_at,
                    outcome=AttemptOutcome.WORKER_LOST,
                    detail="The worker died before recording the platform's answer.",
                )
                for pk, _, _, _, _, _, _, attempts, form, started_at, _, _ in started
            ]
        )
        by_bank: dict[int, list[AuditEntry]] = defaultdict(list)
        for (
            pk,
            bank_id,
            consent_id,
            event_ref,
            event_type,
            page_id,
            psid,
            attempts,
            form,
            _,
            cats,
            worker,
        ) in started:
            by_bank[bank_id].append(
                AuditEntry(
                    action="notification.send_uncertain",
                    target_type="linking.consent",
                    target_id=str(consent_id),
                    details={
                        "notification": pk,
                        "event": event_ref,
                        "event_type": event_type,
                        "form": form,
                        "attempt": attempts + 1,
                        "outcome": AttemptOutcome.WORKER_LOST,
                        "page_id": page_id,
                        "psid": psid,
                        "worker": worker,
                    },
                    data_categories=cats,
                )
            )
        for bank_id in sorted(by_bank):
            audit_record_many(actor=ENGINE, bank_id=bank_id, entries=by_bank[bank_id])
    if started:
        log.warning("%d notifications resent after their worker died mid-send", len(started))
    return len(lost), len(started)


def outbox_sweep(*, now: datetime | None = None) -> SweepReport:
    """Take over expired leases, drop stale receipts, and say how much is due."""
    now = now or timezone.now()
    taken, uncertain = leases_take_over(now=now)
    waiting_wake_stranded(now=now)
    DeliveryReceipt.objects.filter(received_at__lt=now - RECEIPT_LIFETIME).delete()
    cap = settings.NOTIFICATIONS_CLAIM_BATCH + 1
    due = (
        Notification.objects.filter(
            state=State.PENDING,
            next_attempt_at__lte=now,
            bank__integration__status=MessengerIntegration.Status.LIVE,
        )
        .values("pk")[:cap]
        .count()
    )
    return SweepReport(taken_over=taken, uncertain=uncertain, due=due)
