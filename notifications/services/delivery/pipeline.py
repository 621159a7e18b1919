"""One worker's pipeline: claims prepared, sent under the Pages' limits, recorded."""

import threading
import time
from collections import defaultdict, deque
from queue import SimpleQueue

from django.conf import settings

import messenger
from notifications.page_limits import page_buckets
from notifications.services.delivery.claim import Claiming, lease_owner_new
from notifications.services.delivery.digest import Digesting
from notifications.services.delivery.jobs import Job, Result, RunReport, Urgency
from notifications.services.delivery.prepare import Preparing
from notifications.services.delivery.record import Recording
from notifications.services.delivery.send import Sending, _send_pool, _Sent
from notifications.services.queue import waiting_wake_stranded
from portal.models import Bank

CLAIM_PAUSE = 0.02  # after a claim that was not full, look again this much later
URGENT_LOOK = 0.1  # holding a backlog, look for due urgent notifications this often


def deliveries_run(
    *, seconds: float | None = None, batch_size: int | None = None, urgent_only: bool = False
) -> RunReport:
    """Claim and send until nothing is due or `seconds` have passed; safe in any number
    of workers at once.

    One pipeline per call: it claims another batch whenever fewer than half a batch is
    waiting or in flight, so sending never stops for a batch boundary and a new event is
    picked up within milliseconds. `more_due` says whether work was still coming in when
    the time ran out, in which case the caller should run again. `urgent_only`: claim
    urgent notifications only (the urgent queue's workers), so a routine backlog is
    never in this pipeline's hands.
    """
    budget = settings.NOTIFICATIONS_TASK_SECONDS if seconds is None else seconds
    size = batch_size or settings.NOTIFICATIONS_CLAIM_BATCH
    ends = time.monotonic() + budget
    report = RunReport()
    pipeline = _Pipeline(lease_owner_new(), report=report)
    next_claim, last_claimed, done_at_claim = 0.0, 0, 0
    next_urgent_look = 0.0
    try:
        while True:
            now_m = time.monotonic()
            may_claim = now_m < ends or not report.batches  # always at least one claim
            if may_claim and now_m >= next_claim and pipeline.backlog() <= size // 2:
                done_at_claim = sum(report.outcomes.values())
                last_claimed = pipeline.claim(size, urgent_only=urgent_only)
                report.batches += 1
                report.claimed += last_claimed
                next_claim = now_m + (0.0 if last_claimed >= size else CLAIM_PAUSE)
                next_urgent_look = now_m + URGENT_LOOK
            elif (
                not urgent_only
                and may_claim
                and now_m >= next_urgent_look
                and pipeline.holds_routine()
            ):
                # A fraud alert posted now would otherwise wait for this routine backlog to
                # run down to the next claim: a second or more on a saturated Page. Not
                # while only urgent jobs are held: an alert for one of their Pages would
                # wait behind them anyway (each class keeps its order), and one for
                # another Page is the urgent queue's worker's to claim at once (as
                # deployed), or this pipeline's at its next claim. An urgent-only claim
                # flags no rows waiting, so under a backlog of urgent notifications each
                # look stepped over every row held behind a person's message in flight,
                # and promoting urgent jobs had each of their answers written on its own.
                report.claimed += pipeline.claim(size, urgent_only=True)
                pipeline.promote_for_urgent()
                next_urgent_look = now_m + URGENT_LOOK
            if not pipeline.backlog():
                # A message finished since the last claim may have been all that held back
                # its person's next one: record it, then claim once more before stopping.
                pipeline.flush()
                finished_since = sum(report.outcomes.values()) > done_at_claim
                idle = last_claimed == 0 and not finished_since
                if now_m >= ends or (idle and not waiting_wake_stranded(urgent_only=urgent_only)):
                    break
                time.sleep(max(0.0, next_claim - time.monotonic()))
                continue
            pipeline.step()
    finally:
        pipeline.close()
    report.more_due = last_claimed > 0
    return report


class _Pipeline(Claiming, Preparing, Digesting, Sending, Recording):
    """One worker's deliveries: claims prepared, sent under the Pages' limits, recorded.

    Each stage is a part of its own (`claim`, `prepare`, `digest`, `send`, `record`); they share
    the state set up here, which only the pipeline's own thread changes: the pool's
    threads read `client` and `buckets` and hand back what they sent through `answers`.
    """

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
        self.backlogs: dict[str, tuple[float, bool]] = {}  # per Page: (until, under backlog)
        self.running: dict[int, Job] = {}  # in the pool, by id
        self.answers: SimpleQueue[tuple[Job, _Sent]] = SimpleQueue()  # from the pool
        self.ready: tuple[deque[Job], deque[Job]] = (deque(), deque())  # for the pool
        self.ready_lock = threading.Lock()
        self.marked: set[int] = set()
        self.in_pool: dict[str, int] = defaultdict(int)
        self.urgent_in_pool: dict[str, int] = defaultdict(int)
        self.front = 0
        self.floor = 0
        self.limit = settings.NOTIFICATIONS_SEND_CONCURRENCY
        self.client = messenger.get_client()
        self.pool = _send_pool()
        self.buckets = page_buckets()

    def holds_routine(self) -> bool:
        """Whether a routine job waits here for the pool."""
        return any(job.urgency != Urgency.URGENT for queue in self.queues.values() for job in queue)
