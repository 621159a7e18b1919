"""Sending: a thread pool over the pooled httpx client, each call right after its Page's token."""

import contextlib
import logging
import math
import os
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from queue import Empty, SimpleQueue
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.utils import timezone

import messenger
from notifications import metrics
from notifications.models import Notification
from notifications.page_limits import (
    BOOK_AHEAD,
    LocalPageBuckets,
    RedisPageBuckets,
    call_counted,
    page_budget,
)
from notifications.services.delivery.jobs import Job, Reason, State, Urgency

log = logging.getLogger(__name__)

MAX_TOKEN_WAIT = 2.0  # wait longer for a Page's tokens than this, and the claim is released
FLUSH_EVERY = 0.25  # seconds between writes of results…
FLUSH_SIZE = 250  # …or this many results, whichever comes first
QUEUE_DEPTH = 4  # work the pool holds, in multiples of its threads
MARK_AHEAD = 4  # marked `send_started_at` a group at a time: this many times the threads
PAGE_SHARE_SECONDS = 0.1  # per Page, the pool holds this many seconds of its rate


class SendThreads:
    """The worker's sending threads: each runs the calls handed to it (`submit`), in turn.

    A `ThreadPoolExecutor` without its futures: a call's answer comes back through the
    pipeline's own queue (`answers`), so a future per call, with the lock and condition
    it makes, would be made and dropped for every message sent for nothing.
    """

    def __init__(self, threads: int) -> None:
        self.calls: SimpleQueue[Callable[[], None]] = SimpleQueue()
        for n in range(threads):
            threading.Thread(target=self._run, name=f"notifications-send_{n}", daemon=True).start()

    def submit(self, call: Callable[[], None]) -> None:
        self.calls.put(call)

    def _run(self) -> None:
        while True:
            call = self.calls.get()
            try:
                call()
            except Exception:  # a call hands its own errors back; this one is a fault
                log.exception("a sending thread's call failed")


# The worker's sending threads: started on first use in each process.

_pool_lock = threading.Lock()
_pool: tuple[int, SendThreads] | None = None


def _send_pool() -> SendThreads:
    global _pool
    with _pool_lock:
        if _pool is None or _pool[0] != os.getpid():
            _pool = (os.getpid(), SendThreads(settings.NOTIFICATIONS_SEND_CONCURRENCY))
        return _pool[1]


_waiting_lock = threading.Lock()
_waiting: defaultdict[str, int] = defaultdict(int)  # per Page, threads waiting for a token


@dataclass(frozen=True)
class _Sent:
    started_at: datetime | None
    latency_ms: int | None
    message_id: str = ""
    error: BaseException | None = None
    token_wait: float | None = None  # not sent: the Page had no token in time


def _send_one(
    client: messenger.GraphClient, buckets: RedisPageBuckets | LocalPageBuckets, job: Job
) -> _Sent:
    """Take a token from the Page's bucket, in the job's lane, then make the call at once,
    or at the moment booked for it.

    Runs in a pool thread: no database access here. Waits for a token only briefly
    (`MAX_TOKEN_WAIT`, and never past the job's lease): a Page that is out of tokens for
    longer hands the job back. On a saturated Page a routine take books the next slot to
    free within `BOOK_AHEAD` (`page_limits`: the slot is counted as this call's from now,
    so the thread sleeps until it starts and calls then, no sooner). Threads told to wait
    longer come back when their slot is within reach; each sleeps a slot longer per
    thread of this process already waiting, so that they do not all ask again at once.
    """
    urgent = job.urgent_lane
    while job.token is None:
        asked = time.monotonic()
        grant = buckets.take(
            job.page_id,
            1,
            setting=job.send_rate_limit,
            urgent=urgent,
            ahead=min(BOOK_AHEAD, job.send_until - asked),
        )
        if grant.granted:
            if grant.start_in > 0:
                time.sleep(grant.start_in)  # booked: the slot is ours from then on
            job.token = (grant, asked)
            break
        if grant.wait > MAX_TOKEN_WAIT or time.monotonic() + grant.wait >= job.send_until:
            return _Sent(None, None, token_wait=grant.wait)
        with _waiting_lock:
            place = 0 if urgent else _waiting[job.page_id]
            _waiting[job.page_id] += 1
        try:
            time.sleep(grant.wait + place / page_budget(job.page_id, job.send_rate_limit).rate)
        finally:
            with _waiting_lock:
                _waiting[job.page_id] -= 1
    taken, job.token = job.token, None
    started_at = timezone.now()
    started = time.perf_counter()
    try:
        with call_counted(buckets, job.page_id, taken):
            # Prepared: a job to send has its credentials and payload.
            answer = client.send(job.creds, job.payload)  # type: ignore[arg-type]
    except Exception as exc:  # noqa: BLE001 - classified by the caller
        return _Sent(started_at, _ms(started), error=exc)
    return _Sent(started_at, _ms(started), message_id=answer.message_id)


def _ms(started: float) -> int:
    return max(0, round((time.perf_counter() - started) * 1000))


class Sending:
    """The pipeline's sends: the pool kept fed, Pages taken in turn, answers collected."""

    owner: str
    limit: int
    queues: dict[str, deque[Job]]
    order: deque[str]
    not_before: dict[str, float]
    running: dict[int, Job]
    answers: SimpleQueue[tuple[Job, _Sent]]
    marked: set[int]
    in_pool: dict[str, int]
    urgent_in_pool: dict[str, int]
    paused_banks: set[int]
    results: list[Any]
    flushed_at: float
    pool: SendThreads
    ready: tuple[deque[Job], deque[Job]]  # for the pool's threads: urgent, then routine
    ready_lock: threading.Lock
    client: messenger.GraphClient
    buckets: RedisPageBuckets | LocalPageBuckets

    if TYPE_CHECKING:  # the pipeline's other parts

        def flush(self) -> None: ...
        def record(self, job: Job, sent: _Sent) -> None: ...
        def release(self, job: Job, reason: str, at: datetime) -> None: ...

    def step(self) -> None:
        """Keep the thread pool fed, collect answers, record them now and then.

        The pool holds up to `QUEUE_DEPTH` times its threads in work, so sending goes on
        while this thread talks to the database. Each sending thread takes its token
        from the Page's bucket just before its call (`_send_one`): a call starts when its
        token was granted, or when the slot it booked is its own, never earlier, which
        is what keeps every one-second window at the platform within the limit. Per
        Page, the pool holds at most a tenth of a second of its rate, so a slow Page
        never occupies every thread. Messages are marked
        `send_started_at` a group at a time, before they enter the pool.
        """
        now_m = time.monotonic()
        room = QUEUE_DEPTH * self.limit - len(self.running)
        if self.queues and (room >= max(1, self.limit // 2) or not self.running):
            starting = self.pick(room, now_m)
            if starting:
                self.mark_ahead(starting)
                self.take_together(starting)
                for job in starting:
                    self.in_pool[job.page_id] += 1
                    self.urgent_in_pool[job.page_id] += job.urgency == Urgency.URGENT
                    self.running[job.id] = job
                    self.ready[not job.urgent_lane].append(job)
                    self.pool.submit(self.send_next)
        pause = FLUSH_EVERY
        if self.queues and not self.running:
            soonest = min(self.not_before.get(page, 0.0) for page in self.queues)
            pause = min(pause, max(0.001, soonest - now_m))
        urgent_answer = False
        if self.running:
            with contextlib.suppress(Empty):
                urgent_answer |= self.collect(self.answers.get(timeout=pause))
                while True:
                    urgent_answer |= self.collect(self.answers.get_nowait())
        elif self.queues:
            time.sleep(pause)
        if (
            urgent_answer
            or len(self.results) >= FLUSH_SIZE
            or time.monotonic() - self.flushed_at >= FLUSH_EVERY
        ):
            self.flush()

    def take_together(self, starting: list[Job]) -> None:
        """One take for each Page's jobs entering the pool together, per lane: the sending
        threads call at once with the tokens granted (`Job.token`), and only the jobs
        left without one take their own (waiting, or booking a slot, as `_send_one` does).

        One call to Redis for the group instead of one per message. As safe for the
        Page's limit as a take per call: each call is counted from its grant, and one
        that starts a moment later than granted is counted the longer.
        """
        groups: dict[tuple[str, bool], list[Job]] = defaultdict(list)
        for job in starting:
            groups[job.page_id, job.urgent_lane].append(job)
        for (page, urgent), jobs in groups.items():
            if len(jobs) < 2:
                continue
            asked = time.monotonic()
            grant = self.buckets.take(
                page, len(jobs), setting=jobs[0].send_rate_limit, urgent=urgent, counted=False
            )
            for job, one in zip(jobs, grant.each(), strict=False):
                job.token = (one, asked)

    def send_next(self) -> None:
        """In a pool thread: send the next job, urgent ones first.

        The pool's own queue is first come, first served; a job is put in `ready` just
        before each submit, so a pool thread always finds one, and an urgent job handed
        to the pool after routine ones still goes ahead of them.
        """
        with self.ready_lock:
            job = (self.ready[0] or self.ready[1]).popleft()
        self.send(job)

    def send(self, job: Job) -> None:
        """In a pool thread: send, and hand the answer back to the pipeline's thread."""
        try:
            sent = _send_one(self.client, self.buckets, job)
        except BaseException as exc:  # noqa: BLE001 - every job must come back
            sent = _Sent(None, None, error=exc)
        self.answers.put((job, sent))

    def collect(self, answer: "tuple[Job, _Sent]") -> bool:
        """Record one answer; returns whether it is to be written at once: the job held
        back its person's urgent notification, which can be claimed once it is. The
        caller writes it with every other answer already in (one flush, not one each)."""
        job, sent = answer
        del self.running[job.id]
        self.in_pool[job.page_id] -= 1
        self.urgent_in_pool[job.page_id] -= job.urgency == Urgency.URGENT
        self.record(job, sent)
        return job.holds_back_urgent

    def pick(self, room: int, now_m: float) -> list[Job]:
        """Up to `room` jobs for the pool, taking Pages in turn, within each Page's share.

        A Page's urgent jobs lead its queue (`Claiming.claim`). While any of them is in
        the pool, none of the Page's routine jobs joins it: the threads would race for
        the Page's next tokens, and a routine call could win.
        """
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
                rate = page_budget(page, queue[0].send_rate_limit).rate
                share = max(2, math.ceil(rate * PAGE_SHARE_SECONDS))
                take = min(len(queue), room - len(starting), share - self.in_pool[page])
                urgent = self.urgent_in_pool[page] > 0
                for _ in range(max(0, take)):
                    if queue[0].urgency == Urgency.URGENT:
                        urgent = True
                    elif urgent:
                        break
                    starting.append(queue.popleft())
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
        """Record that these messages are being handed to the Send API, under our lease
        (a digest's, for each notification it carries)."""
        ids = [original.id for job in jobs for original in (job, *job.digest)]
        Notification.objects.filter(
            pk__any=ids, lease_owner=self.owner, state=State.IN_FLIGHT
        ).update(send_started_at=timezone.now())
        resending = [job.id for job in jobs if job.resending]
        if resending:
            # No echo came for their uncertain send: this is their one resend, flagged.
            flagged = Notification.objects.filter(
                pk__any=resending, lease_owner=self.owner, state=State.IN_FLIGHT
            ).update(resent=True)
            metrics.resend_observe(flagged)

    def release_all(self, queue: deque[Job], reason: str, wait_seconds: float) -> None:
        moment = timezone.now() + timedelta(seconds=wait_seconds)
        while queue:
            self.release(queue.popleft(), reason, moment)
