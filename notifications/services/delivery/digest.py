"""Digests: on a Page under backlog, one person's several routine updates as one message.

A Page's Send API limit (300 calls/s) is the ceiling of a large bank. When the Page has
more routine updates due than it can send soon, a person with several of them waiting
gets one message instead, as a notification platform's digest does:

    3 transactions:
    • Card ••••9012: EUR 12.00 at CAFE LUNA.
    • Card ••••9012: EUR 40.00 at BOOKS & CO.
    • Card ••••9012: EUR 8.50 at METRO.

**The rule.** A Page is *under backlog* when its routine notifications whose time has come
and that are not sent yet (pending or in flight, waiting ones included) number at least
what the Page's limit sends in `NOTIFICATIONS_DIGEST_BACKLOG_SECONDS` (10 s: 3,000 at 300
calls/s), and at least two. Each worker reads that count at most once a second per Page
(`page_backlogged`). While it holds, a claimed routine notification going out as a
free-form update carries the same person's next routine notifications of the same link
(consent) with it, in their order, as many as fit under Messenger's 2,000 characters; the
others stay queued. With `NOTIFICATIONS_DIGESTS` off, nothing here runs.

**What each original keeps.** A digest goes out only where each of its originals could go
on its own: the lead (the claimed head of the person's queue) passed every check of
`prepare` and goes as a free-form update, inside the 24-hour window; each other one is due
now (one parked for quiet hours is not, and stays parked: it does not hold back the ones
behind it, as in the queue), routine, not switched to the utility template, still covered
by the consent (its scope, its account) and within the retry budget. The run stops at
the first of the person's routine notifications that fails, so their order holds; and at
a second balance update of one account, so that digests never show a balance twice (the
planner supersedes open balance updates as before: one in flight is not superseded, and
the newer one goes after it). Urgent notifications, fraud alerts among them, never join
a digest, and a person's urgent one waits only for the digest in flight, as it would for
any one message. Each line is the original's own text, rendered and masked when it was
queued.

**How it is recorded.** The others are leased with the lead, in flight beside it, with
`digest` set to the lead's id (the partial unique index of one message in flight per
person counts only rows without it). The Send API's answer is the answer for each of
them (`digest_results_expand`): sent, each with `digest` set to the lead's id, one
`DeliveryAttempt` per original and one `notification.sent` outcome per original naming
the digest; retried, held or failed together. The audit entry of the send lists every
original, and its data categories are the union of theirs.
"""

import math
import time
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

import messenger
from notifications.models import Notification
from notifications.page_limits import page_limit
from notifications.services.delivery.claim import _jobs
from notifications.services.delivery.jobs import Form, Job, Reason, Result, State, Urgency
from notifications.services.delivery.prepare import _facts_read, _link_ended
from notifications.services.queue import NO_FLOOR, _dt, open_ids
from portal.events import EventType
from portal.languages import language_of
from portal.rendering import TEXT_LIMIT

LOOKAHEAD = 50  # of a person's next routine notifications, this many are looked at
BACKLOG_KEPT = 1.0  # seconds a worker keeps a Page's backlog reading
BULLET = "• "

# The digest's first line, per language: by the event type of its lines, or "" for a mix.
HEADERS: dict[str, dict[str, str]] = {
    "en": {
        EventType.TRANSACTION_POSTED: "{n} transactions:",
        EventType.BALANCE_UPDATED: "{n} balance updates:",
        EventType.RECEIPT_ISSUED: "{n} receipts:",
        EventType.SHIPMENT_UPDATED: "{n} shipping updates:",
        "": "{n} updates:",
    },
    "fr": {
        EventType.TRANSACTION_POSTED: "{n} opérations :",
        EventType.BALANCE_UPDATED: "{n} mises à jour de solde :",
        EventType.RECEIPT_ISSUED: "{n} reçus :",
        EventType.SHIPMENT_UPDATED: "{n} suivis de livraison :",
        "": "{n} mises à jour :",
    },
    "de": {
        EventType.TRANSACTION_POSTED: "{n} Umsätze:",
        EventType.BALANCE_UPDATED: "{n} Kontostandsänderungen:",
        EventType.RECEIPT_ISSUED: "{n} Belege:",
        EventType.SHIPMENT_UPDATED: "{n} Versand-Updates:",
        "": "{n} Mitteilungen:",
    },
    "es": {
        EventType.TRANSACTION_POSTED: "{n} movimientos:",
        EventType.BALANCE_UPDATED: "{n} actualizaciones de saldo:",
        EventType.RECEIPT_ISSUED: "{n} recibos:",
        EventType.SHIPMENT_UPDATED: "{n} actualizaciones de envío:",
        "": "{n} avisos:",
    },
}


def digest_text(texts: list[str], event_types: list[str], locale: str) -> str:
    """The digest of these messages (each already rendered and masked), in order."""
    headers = HEADERS.get(language_of(locale), HEADERS["en"])
    kinds = set(event_types)
    header = headers.get(kinds.pop() if len(kinds) == 1 else "", headers[""])
    lines = [header.format(n=len(texts)), *(BULLET + text for text in texts)]
    return "\n".join(lines)


def digest_fit(texts: list[str], event_types: list[str], locale: str) -> int:
    """How many of `texts`, from the first, one digest holds within Messenger's limit
    (at least one: a single message is not a digest, and goes out as it is)."""
    fits = 1
    for n in range(2, len(texts) + 1):
        if len(digest_text(texts[:n], event_types[:n], locale)) > TEXT_LIMIT:
            break
        fits = n
    return fits


def backlog_threshold(page_id: str, setting: int | None = None) -> int:
    """The due routine notifications from which a Page is under backlog."""
    seconds = float(settings.NOTIFICATIONS_DIGEST_BACKLOG_SECONDS)
    return max(2, math.ceil(page_limit(page_id, setting) * seconds))


def page_backlog(page_id: str, *, now: datetime, up_to: int, floor: int = NO_FLOOR) -> int:
    """The Page's routine notifications due and not sent yet, counted up to `up_to`
    (from `floor`, the open notifications' floor: `queue.open_floor`).

    The states are written into the SQL so that the plan walks the index of open
    notifications by person (`notification_queue`) and stops at `up_to`.
    """
    n = connection.ops.quote_name(Notification._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT count(*) FROM (SELECT 1 FROM {n} WHERE {open_ids(floor)} "  # noqa: S608
            f"AND page_id = %s "
            f"AND state IN ('{State.PENDING.value}', '{State.IN_FLIGHT.value}') "
            f"AND urgency = '{Urgency.ROUTINE.value}' AND next_attempt_at <= %s LIMIT %s) s",
            [page_id, _dt(now), up_to],
        )
        row = cursor.fetchone()
    return int(row[0]) if row else 0


def page_backlogged(
    page_id: str, *, now: datetime, setting: int | None = None, floor: int = NO_FLOOR
) -> bool:
    """Whether the Page is under backlog (see the module's docstring)."""
    threshold = backlog_threshold(page_id, setting)
    return page_backlog(page_id, now=now, up_to=threshold, floor=floor) >= threshold


@dataclass(frozen=True)
class _Next:
    """One of the person's next routine notifications, as a digest looks at it."""

    id: int
    consent_id: int
    account_id: int
    event_type: str
    next_attempt_at: datetime
    reason: str
    window_closed: bool
    text: str


_NEXT = ("id", "consent_id", "account_id", "event_type", "next_attempt_at", "reason")


def _people_next(leads: list[Job], floor: int = NO_FLOOR) -> dict[int, list[_Next]]:
    """Per lead, the person's next pending routine notifications after it, in order
    (looked for from `floor`: `queue.open_floor`)."""
    if connection.vendor != "postgresql":
        return {lead.id: _person_next(lead) for lead in leads}
    n = connection.ops.quote_name(Notification._meta.db_table)
    columns = ", ".join(f"x.{name}" for name in (*_NEXT, "window_closed", "text"))
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT h.id, {columns} FROM {n} h CROSS JOIN LATERAL ("  # noqa: S608
            f"SELECT m.* FROM {n} m WHERE m.page_id = h.page_id AND m.psid = h.psid "
            f"AND {open_ids(floor, 'm')} "
            f"AND m.state IN ('{State.PENDING.value}') AND m.urgency = "
            f"'{Urgency.ROUTINE.value}' AND m.sequence > h.sequence "
            f"ORDER BY m.sequence LIMIT %s) x WHERE h.id = ANY(%s) ORDER BY h.id, x.sequence",
            [LOOKAHEAD, [lead.id for lead in leads]],
        )
        rows = cursor.fetchall()
    found: dict[int, list[_Next]] = {lead.id: [] for lead in leads}
    for lead_id, *values in rows:
        found[lead_id].append(_Next(*values))
    return found


def _person_next(lead: Job) -> list[_Next]:
    """`_people_next` for one lead, where PostgreSQL's LATERAL is not at hand."""
    sequence = Notification.objects.filter(pk=lead.id).values_list("sequence", flat=True)
    rows = Notification.objects.filter(
        page_id=lead.page_id,
        psid=lead.psid,
        state=State.PENDING,
        urgency=Urgency.ROUTINE,
        sequence__gt=sequence[:1],
    ).order_by("sequence")[:LOOKAHEAD]
    return [_Next(*row) for row in rows.values_list(*_NEXT, "window_closed", "text")]


def _run(lead: Job, following: Iterable[_Next], now: datetime) -> list[_Next]:
    """The notifications that may join `lead`'s digest: the person's next routine ones,
    up to the first that may not (see the module's docstring)."""
    run: list[_Next] = []
    balances = {lead.account_id} if lead.event_type == EventType.BALANCE_UPDATED else set()
    for candidate in following:
        if candidate.next_attempt_at > now and candidate.reason == Reason.QUIET_HOURS:
            continue  # parked until quiet hours end: it holds back nothing behind it
        if (
            candidate.consent_id != lead.consent_id
            or candidate.reason == Reason.AWAITING_ECHO  # may have reached the person
            or candidate.next_attempt_at > now
            or candidate.window_closed
            or not candidate.text
            or candidate.event_type == EventType.FRAUD_ALERT
            or candidate.account_id in balances
        ):
            break
        if candidate.event_type == EventType.BALANCE_UPDATED:
            balances.add(candidate.account_id)
        run.append(candidate)
    return run


def _may_lead(job: Job) -> bool:
    return (
        job.urgency == Urgency.ROUTINE
        and job.form == Form.UPDATE
        and job.event_type != EventType.FRAUD_ALERT
        and bool(job.text)
        and not job.window_closed
        and job.reason != Reason.AWAITING_ECHO  # its one resend is the message it was
        and not job.resending
    )


class Digesting:
    """The pipeline's digests: a claimed head carries the person's next routine updates."""

    owner: str
    backlogs: dict[str, tuple[float, bool]]
    floor: int  # the open notifications' floor of the last claim

    if TYPE_CHECKING:  # the pipeline's other parts

        @staticmethod
        def out_of_budget(
            job: Job, now: datetime, *, next_attempt: datetime | None = None
        ) -> bool: ...

    def digests_gather(self, jobs: list[Job]) -> list[Job]:
        """Turn the prepared jobs that may lead a digest into digests; returns `jobs`."""
        if not settings.NOTIFICATIONS_DIGESTS:
            return jobs
        now = timezone.now()
        leads = [job for job in jobs if _may_lead(job) and self.backlogged(job, now)]
        if not leads:
            return jobs
        following = _people_next(leads, self.floor)
        runs = {lead.id: _run(lead, following[lead.id], now) for lead in leads}
        members = {m.id: m for m in _jobs([c.id for run in runs.values() for c in run])}
        facts = _facts_read(list(members.values())) if members else None
        chosen: dict[int, list[Job]] = {}
        for lead in leads:
            run: list[Job] = []
            for candidate in runs[lead.id]:
                member = members.get(candidate.id)
                if (
                    member is None
                    or facts is None
                    or _link_ended(member, facts.consents.get(member.consent_id), facts, now)
                    or self.out_of_budget(member, now)
                ):
                    break
                run.append(member)
            texts = [lead.text, *(m.text for m in run)]
            kinds = [lead.event_type, *(m.event_type for m in run)]
            fits = digest_fit(texts, kinds, lead.locale)
            if fits > 1:
                chosen[lead.id] = run[: fits - 1]
        leased = _lease(self.owner, chosen, now)
        for lead in leads:
            if leased.get(lead.id):
                _digest_into(lead, leased[lead.id])
        return jobs

    def backlogged(self, job: Job, now: datetime) -> bool:
        """Whether the job's Page is under backlog, read at most once a second."""
        kept = self.backlogs.get(job.page_id)
        now_m = time.monotonic()
        if kept is None or kept[0] <= now_m:
            backlogged = page_backlogged(
                job.page_id, now=now, setting=job.send_rate_limit, floor=self.floor
            )
            kept = (now_m + BACKLOG_KEPT, backlogged)
            self.backlogs[job.page_id] = kept
        return kept[1]


def _lease(owner: str, chosen: dict[int, list[Job]], now: datetime) -> dict[int, list[Job]]:
    """Lease each digest's other originals beside its lead; returns what was leased.

    The rows are locked first (`SKIP LOCKED`, in id order, so that no one waits on a
    worker): one that is no longer pending (superseded, its link ended) or that another
    transaction holds ends its digest's run there, so the person's order holds.
    """
    wanted = sorted(m.id for run in chosen.values() for m in run)
    if not wanted:
        return {}
    lease_until = now + timedelta(seconds=settings.NOTIFICATIONS_LEASE_SECONDS)
    with transaction.atomic():
        locked = set(
            Notification.objects.select_for_update(skip_locked=True)
            .filter(pk__in=wanted, state=State.PENDING)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        leased: dict[int, list[Job]] = {}
        for lead_id, run in chosen.items():
            kept = []
            for member in run:
                if member.id not in locked:
                    break
                kept.append(member)
            if kept:
                leased[lead_id] = kept
        pairs = [(m.id, lead_id) for lead_id, run in leased.items() for m in run]
        if pairs:
            _lease_write(owner, pairs, lease_until)
    return leased


def _lease_write(owner: str, pairs: list[tuple[int, int]], until: datetime) -> None:
    """Mark the (member, lead) pairs in flight under `owner`'s lease, in the lead's digest."""
    fields: dict[str, Any] = {
        "state": State.IN_FLIGHT,
        "lease_owner": owner,
        "lease_expires_at": until,
        "send_started_at": None,
        "waiting": False,
    }
    if connection.vendor != "postgresql":
        for member_id, lead_id in pairs:
            Notification.objects.filter(pk=member_id).update(**fields, digest=lead_id)
        return
    n = connection.ops.quote_name(Notification._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {n} SET state = %s, lease_owner = %s, lease_expires_at = %s, "  # noqa: S608
            f"send_started_at = NULL, waiting = FALSE, digest = v.lead "
            f"FROM unnest(%s::bigint[], %s::bigint[]) AS v(id, lead) WHERE {n}.id = v.id",
            [
                State.IN_FLIGHT,
                owner,
                _dt(until),
                [member for member, _ in pairs],
                [lead for _, lead in pairs],
            ],
        )


def _digest_into(lead: Job, members: list[Job]) -> None:
    """Make `lead`'s message the digest of itself and `members`."""
    originals = [lead, *members]
    text = digest_text(
        [job.text for job in originals], [job.event_type for job in originals], lead.locale
    )
    for member in members:
        member.digest_lead = lead.id
        member.form = Form.UPDATE
        member.send_until = lead.send_until
    lead.digest = members
    lead.payload = messenger.builders.text_message(
        lead.psid, text, messaging_type="UPDATE", metadata=messenger.reference("n", lead.id)
    )


def digest_results_expand(results: list[Result]) -> list[Result]:
    """Each digest's result, and the same result for each of its other originals.

    The Send API's answer about the digest is the answer about each original: sent (each
    naming the digest), retried, held or failed together. One exception: a lead whose
    retry budget ran out is dead-lettered alone, and the others go back in the queue.
    """
    expanded: list[Result] = []
    for result in results:
        expanded.append(result)
        lead = result.job
        if not lead.digest:
            continue
        if result.state == State.SENT:
            result.digest_id = lead.id
        for member in lead.digest:
            if result.attempted:
                member.attempts += 1
            if result.state == State.DEAD and result.reason == Reason.BUDGET_EXHAUSTED:
                expanded.append(
                    replace(
                        result,
                        job=member,
                        state=State.PENDING,
                        reason=Reason.RETRYING,
                        next_attempt_at=timezone.now(),
                        unreachable=False,
                    )
                )
                continue
            expanded.append(replace(result, job=member, unreachable=False))
    return expanded


def digest_listing(lead: Job) -> list[dict[str, Any]]:
    """Every original a digest carried, for its audit entry."""
    return [
        {
            "notification": job.id,
            "event": job.event_ref,
            "event_type": job.event_type,
            "data_categories": job.data_categories,
        }
        for job in (lead, *lead.digest)
    ]


def digest_data_categories(lead: Job) -> list[str]:
    """The data categories a digest disclosed: the union of its originals'."""
    return sorted({c for job in (lead, *lead.digest) for c in job.data_categories})
