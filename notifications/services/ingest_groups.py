"""Posts of one bank that arrive together share one transaction (a group commit).

A web process serving requests in threads (gunicorn's gthread workers) often has several
posts of one bank in hand at once. Each alone takes a transaction of its own: its round
trips, its commit, the bank's audit chain and outcome feed locked in turn. Here the first
post of a bank stores its events at once; posts of the same bank that arrive meanwhile
wait for it, then the first of them stores them together (`events_ingest_posts`), up to
`MAX_BATCH` events, each answered with its own report and audited with its own entry
(its key, its request id, its source address), as if stored alone in that order.

If a group's transaction fails, each of its posts is stored again alone, by its own
thread, so an error reaches only the post that causes it. A post waits for the groups
ahead of it: the transaction in progress, and more only when over 1000 events wait.

Only posts of at most `GROUPED_POST_MAX` events are grouped: a larger batch already
shares its transaction among its events, and is stored at once, alone, beside any group
(two batches of one bank in one process are stored side by side, not one after the
other). With one request per process at a time (sync workers) every group is one post.
Posts made inside a transaction already open are stored alone, in it: a post with an
`Idempotency-Key` (its key is claimed in the same transaction), or a caller's
`atomic()`. So are posts on databases other than PostgreSQL (the demo's SQLite).
"""

import threading
from typing import Any

from django.db import connection

from core import context
from notifications.services.events import (
    MAX_BATCH,
    IngestReport,
    Post,
    event_ingest,
    events_ingest_posts,
)
from portal.audit import Actor
from portal.models import Bank

GROUPED_POST_MAX = 100  # events; larger posts are stored alone


class _Waiting:
    __slots__ = ("alone", "done", "lead", "post", "report")

    def __init__(self, post: Post) -> None:
        self.post = post
        self.done = threading.Event()
        self.report: IngestReport | None = None
        self.lead = False  # it stores the next group
        self.alone = False  # its group failed: it stores itself alone


class IngestGroups:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiting: dict[int, list[_Waiting]] = {}  # by bank
        self._storing: set[int] = set()  # banks with a group being stored

    def ingest(self, *, actor: Actor, bank: Bank, events: list[Any]) -> IngestReport:
        """`event_ingest(actor=actor, bank=bank, events=events)`, in a group with the
        posts of the same bank that arrive while another group is stored."""
        if (
            len(events) > GROUPED_POST_MAX
            or connection.vendor != "postgresql"
            or connection.in_atomic_block
        ):
            return event_ingest(actor=actor, bank=bank, events=events)
        me = _Waiting(Post(actor=actor, events=events, context=context.current()))
        with self._lock:
            self._waiting.setdefault(bank.pk, []).append(me)
            leads = bank.pk not in self._storing
            if leads:
                self._storing.add(bank.pk)
        if not leads:
            me.done.wait()
            if not me.lead:
                if me.alone:
                    (report,) = events_ingest_posts(bank=bank, posts=[me.post])
                    return report
                return me.report  # type: ignore[return-value]  # the group's lead set it
        return self._store(bank, me)

    def _store(self, bank: Bank, me: _Waiting) -> IngestReport:
        """Store the posts waiting for `bank` (`me` among them) as one group."""
        with self._lock:
            waiting = self._waiting[bank.pk]
            group: list[_Waiting]
            group, size = [], 0
            while waiting and (not group or size + len(waiting[0].post.events) <= MAX_BATCH):
                size += len(waiting[0].post.events)
                group.append(waiting.pop(0))
        served = False
        try:
            reports = events_ingest_posts(bank=bank, posts=[w.post for w in group])
            for waiting_post, report in zip(group, reports, strict=True):
                waiting_post.report = report
            served = True
        except Exception:
            if len(group) == 1:
                raise
        finally:
            self._hand_over(bank.pk)
            for waiting_post in group:
                waiting_post.alone = not served
                if waiting_post is not me:
                    waiting_post.done.set()
        if served:
            return me.report  # type: ignore[return-value]  # set for the whole group
        (report,) = events_ingest_posts(bank=bank, posts=[me.post])
        return report

    def _hand_over(self, bank_id: int) -> None:
        """The next post waiting for this bank stores the next group; or none waits."""
        with self._lock:
            waiting = self._waiting.get(bank_id)
            if waiting:
                waiting[0].lead = True
                waiting[0].done.set()
            else:
                self._waiting.pop(bank_id, None)
                self._storing.discard(bank_id)


ingest_groups = IngestGroups()
