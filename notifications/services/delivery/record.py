"""Recording: each Send API answer turned into a result, and results written a group at a time.

One transaction per group: the notification's new state, one `DeliveryAttempt` per call,
one audit entry per message that reached the platform, and sent/failed/dead entries in
the bank's outcome feed. A digest's answer is its every original's (`digest`): each gets
its attempt and its outcome, and the one audit entry lists them all.
"""

import contextlib
import logging
import random
import time
from collections import defaultdict, deque
from collections.abc import Callable
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone

import messenger
from core.db.rows import array_literal, arrays_usable, instances_insert
from notifications import metrics
from notifications.models import DeliveryAttempt, DeliveryReceipt, Notification, Outcome, Recipient
from notifications.page_limits import page_buckets
from notifications.services.delivery.digest import (
    digest_data_categories,
    digest_listing,
    digest_results_expand,
)
from notifications.services.delivery.jobs import (
    ENGINE,
    AttemptOutcome,
    Form,
    Job,
    Reason,
    Result,
    RunReport,
    State,
)
from notifications.services.delivery.send import MAX_TOKEN_WAIT, _Sent
from notifications.services.echoes import SETTLED_DETAIL, echoes_for, echoes_settled
from notifications.services.events import outcomes_record
from notifications.services.hand_back import hand_back_wanted
from notifications.services.lifecycle import delivered_early_outcomes_record
from notifications.services.nudge import hand_back_nudge
from notifications.services.queue import NO_FLOOR, people_wake
from portal.models import Bank, MessengerIntegration
from portal.services import integration_pause
from portal.services.audit import AuditEntry, audit_record_many

log = logging.getLogger(__name__)


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


class Recording:
    """The pipeline's results: what each answer says, kept until the next flush."""

    owner: str
    report: RunReport | None
    results: list[Result]
    flushed_at: float
    paused_banks: set[int]
    banks: dict[int, Bank]
    marked: set[int]
    queues: dict[str, deque[Job]]
    not_before: dict[str, float]
    floor: int  # the open notifications' floor of the last claim

    if TYPE_CHECKING:  # the pipeline's other parts

        def release_all(self, queue: deque[Job], reason: str, wait_seconds: float) -> None: ...
        @staticmethod
        def out_of_budget(
            job: Job, now: datetime, *, next_attempt: datetime | None = None
        ) -> bool: ...

    def record(self, job: Job, sent: _Sent) -> None:
        """Turn one Send API answer into a result, acting on what it says about the Page."""
        now = timezone.now()
        if sent.token_wait is not None:  # no token in time: back to the queue, untried
            self.token_missed(job, sent.token_wait, now)
            return
        exc = sent.error
        base: dict[str, Any] = {
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
        else:
            result = self.failure_result(job, exc, now, base)
        self.results.append(result)

    def token_missed(self, job: Job, token_wait: float, now: datetime) -> None:
        self.not_before[job.page_id] = time.monotonic() + token_wait
        queue = self.queues.get(job.page_id)
        if token_wait > MAX_TOKEN_WAIT and queue:
            self.release_all(queue, Reason.RATE_LIMITED, token_wait)
        self.release(job, Reason.RATE_LIMITED, now + timedelta(seconds=token_wait))

    def failure_result(
        self, job: Job, exc: BaseException, now: datetime, base: dict[str, Any]
    ) -> Result:
        """By the error's class: retry later, pause the bank's integration, or give up."""
        if isinstance(exc, messenger.ThrottledError):
            page_buckets().throttle(job.page_id, exc.retry_after_seconds)
            return self.retry(
                job, now, Reason.THROTTLED, AttemptOutcome.THROTTLED, exc.retry_after_seconds, base
            )
        if isinstance(exc, messenger.TransientError) and not exc.maybe_processed:
            return self.retry(job, now, Reason.RETRYING, AttemptOutcome.TRANSIENT, None, base)
        if isinstance(exc, messenger.OutsideWindowError) and job.form != Form.UTILITY:
            result = self.retry(
                job, now, Reason.OUTSIDE_WINDOW, AttemptOutcome.OUTSIDE_WINDOW, None, base
            )
            result.next_attempt_at, result.window_closed = now, True
            return result
        if isinstance(exc, (messenger.BadTokenError, messenger.PageRestrictedError)):
            self.pause(job.bank_id, exc)
            bad_token = isinstance(exc, messenger.BadTokenError)
            return Result(
                job,
                State.PENDING,
                Reason.INTEGRATION_PAUSED,
                next_attempt_at=now,
                outcome=AttemptOutcome.BAD_TOKEN if bad_token else AttemptOutcome.PAGE_RESTRICTED,
                **base,
            )
        return _refusal_result(job, exc, base, now)

    def retry(
        self,
        job: Job,
        now: datetime,
        reason: str,
        outcome: str,
        at_least: float | None,
        base: dict[str, Any],
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
        results, self.results = digest_results_expand(self.results), []
        self.flushed_at = time.monotonic()
        if not results:
            return
        self.marked.difference_update(result.job.id for result in results)
        results_record(owner=self.owner, results=results, banks=self.banks, floor=self.floor)
        if self.report is not None:
            for result in results:
                self.report.outcomes[result.state] += 1


def _refusal_result(job: Job, exc: BaseException, base: dict[str, Any], now: datetime) -> Result:
    """A call the platform will not accept again as it is, or one that may have been sent."""
    if isinstance(exc, messenger.OutsideWindowError):
        return Result(
            job,
            State.HELD,
            Reason.NO_ALLOWED_FORM,
            outcome=AttemptOutcome.OUTSIDE_WINDOW,
            **base,
        )
    if isinstance(exc, messenger.PersonUnavailableError):
        return Result(
            job,
            State.FAILED,
            Reason.PERSON_UNAVAILABLE,
            outcome=AttemptOutcome.PERSON_UNAVAILABLE,
            unreachable=True,
            **base,
        )
    if isinstance(exc, messenger.ConfigError | messenger.TagOveruseError):
        return Result(job, State.DEAD, Reason.REFUSED, outcome=AttemptOutcome.CONFIG, **base)
    if isinstance(exc, messenger.BadRequestError):
        return Result(job, State.DEAD, Reason.REFUSED, outcome=AttemptOutcome.BAD_REQUEST, **base)
    # A lost connection after the request went out, an unreadable success or an
    # unknown failure: the message may have been sent. Never resend it blindly: its echo,
    # or the lack of one within the wait, decides (`services.echoes`).
    if not isinstance(exc, messenger.MessengerError):
        log.error("send of notification %s failed unexpectedly", job.id, exc_info=exc)
        base["detail"] = f"{type(exc).__name__} while sending"
    wait = settings.NOTIFICATIONS_ECHO_WAIT_SECONDS
    return Result(
        job,
        State.PENDING,
        Reason.AWAITING_ECHO,
        next_attempt_at=now + timedelta(seconds=wait),
        outcome=AttemptOutcome.UNCERTAIN,
        uncertain=True,
        **{**base, "reached_platform": True},
    )


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
    ("digest", "bigint"),
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
_OUTCOME_OF: dict[str, str] = {
    State.SENT: Outcome.Type.NOTIFICATION_SENT,
    State.FAILED: Outcome.Type.NOTIFICATION_FAILED,
    State.DEAD: Outcome.Type.NOTIFICATION_DEAD,
}


def results_record(
    *, owner: str, results: list[Result], banks: dict[int, Bank], floor: int = NO_FLOOR
) -> None:
    """Write a group of results in one transaction.

    The notification rows change only while the lease is still `owner`'s (a worker that
    overran its lease has been taken over, and the new owner decides). Attempts and
    audit entries are written regardless: the call happened, and if the message reached
    the platform, data left the bank. Locks are taken in the order every writer uses:
    notification rows, then the bank's audit chain, then its outcome feed.
    """
    now = timezone.now()
    with transaction.atomic():
        _settle_echoed(results)
        applied = _apply(owner, results, now)
        settled = [r.job.id for r in results if r.echo_settled and r.job.id in applied]
        echoes_settled(settled)
        _attempts_insert(results)
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
                entries=[
                    _audit_entry(r)
                    for r in by_bank[bank_id]
                    if r.reached_platform and r.job.digest_lead is None  # a digest: one entry
                ],
            )
        for bank_id in sorted(by_bank):
            bank = banks.get(bank_id) or Bank.objects.get(pk=bank_id)
            # A `_Row` has an `OutcomeRow`'s fields.
            outcomes = _outcomes(bank_id, by_bank[bank_id], applied, now)
            outcomes_record(bank=bank, outcomes=outcomes)  # type: ignore[arg-type]
        delivered_early_outcomes_record(results=results, applied=early, banks=banks)
    # After commit, so that a claim flagging one of these people's next messages either
    # saw this commit, or flagged them before this wake-up looks (see `queue`).
    people_wake(
        ((r.job.page_id, r.job.psid) for r in results if r.state != State.PENDING), floor=floor
    )
    if hand_back_wanted([(r.state, r.reason, r.job.urgency) for r in results]):
        hand_back_nudge()
    metrics.results_observe(r for r in results if r.job.digest_lead is None)  # Send API calls
    if settled:
        metrics.settled_observe(len(settled))


def _settle_echoed(results: list[Result]) -> None:
    """A call whose message's echo has come (before its answer was recorded) was sent,
    whatever the answer said: a dropped connection, an unreadable success, an error."""
    echoed = echoes_for([r.job.id for r in results if r.attempted and r.state != State.SENT])
    for result in results:
        if result.job.id in echoed and result.attempted and result.state != State.SENT:
            result.message_id = echoed[result.job.id][0]
            if result.job.digest:
                result.digest_id = result.job.id
            result.state, result.reason, result.detail = State.SENT, "", SETTLED_DETAIL
            result.next_attempt_at, result.unreachable = None, False
            result.reached_platform = result.echo_settled = True
    # A digest's echo names its lead: the others it carried were sent in the same message.
    lead_ids = {r.job.id: r for r in results if r.echo_settled}
    for result in results:
        lead = lead_ids.get(result.job.digest_lead or 0)
        if lead is not None and result.state != State.SENT:
            result.message_id, result.digest_id = lead.message_id, lead.job.id
            result.state, result.reason, result.detail = State.SENT, "", SETTLED_DETAIL
            result.next_attempt_at, result.unreachable = None, False
            result.reached_platform = result.echo_settled = True


class _Row(SimpleNamespace):
    """A row for `instances_insert`: the fields it writes, without a model instance's
    cost (three rows per message sent)."""


def _attempts_insert(results: list[Result]) -> None:
    """One `DeliveryAttempt` per call made."""
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


def _outcomes(bank_id: int, results: list[Result], applied: set[int], now: datetime) -> list[_Row]:
    """The bank's outcome feed entries: notifications this group made sent, failed or dead."""
    return [
        _Row(
            bank_id=bank_id,
            type=_OUTCOME_OF[r.state],
            event_id=r.job.event_id,
            notification_id=r.job.id,
            event_ref=r.job.event_ref,
            event_type=r.job.event_type,
            # Only what the feed serves: the notification and its attempts keep the rest.
            details={
                **({"reason": r.reason} if r.reason else {}),
                **({"digest": r.digest_id} if r.digest_id else {}),
            },
            occurred_at=now,
        )
        for r in results
        if r.job.id in applied and r.state in _OUTCOME_OF
    ]


def _apply(owner: str, results: list[Result], now: datetime) -> set[int]:
    """Update the notifications from `results` in one statement; returns the ids changed.

    Many results on PostgreSQL go as one array a column (`core.db.rows.array_literal`):
    one parameter to write per column instead of one per value, which cost the worker
    more than the update cost the database.
    """
    pg = connection.vendor == "postgresql"
    casts = {
        "text": "text",
        "time": "timestamptz" if pg else "text",
        "int": "integer",
        "bigint": "bigint",
        "bool": "boolean" if pg else "integer",
    }
    table = connection.ops.quote_name(Notification._meta.db_table)
    assignments = ", ".join(
        f"{column} = CAST(v.column{n} AS {casts[kind]})"
        for n, (column, kind) in enumerate(_UPDATED, start=2)
    )
    flag = len(_UPDATED) + 2  # the last column: whether this result makes it uncertain
    kinds = ["bigint", *(kind for _, kind in _UPDATED), "bool"]
    adapt = connection.ops.adapt_datetimefield_value
    rows = [_applied_row(r, adapt(now), adapt) for r in results]
    applied: set[int] = set()

    def update(source: str, params: list[Any], ids: Any) -> None:
        # PostgreSQL: the ids again, a constant, so the plan is of their months alone.
        months, months_params = (f"AND {table}.id = ANY(%s::bigint[]) ", [ids]) if pg else ("", [])
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {table} SET {assignments}, lease_owner = '', "  # noqa: S608
                f"lease_expires_at = NULL, send_started_at = NULL, waiting = FALSE, "
                f"uncertain = {table}.uncertain OR CAST(v.column{flag} AS {casts['bool']}) "
                f"FROM {source} "
                f"WHERE {table}.id = v.column1 {months}AND {table}.lease_owner = %s "
                f"AND {table}.state = %s RETURNING {table}.id",
                [*params, *months_params, owner, State.IN_FLIGHT],
            )
            applied.update(pk for (pk,) in cursor.fetchall())

    if arrays_usable(len(rows)):
        literals = [array_literal(column) for column in zip(*rows, strict=True)]
        if None not in literals:
            arrays = ", ".join(f"%s::{casts[kind]}[]" for kind in kinds)
            names = ", ".join(f"column{n}" for n in range(1, flag + 1))
            update(f"unnest({arrays}) AS v({names})", literals, literals[0])
            rows = []
    row = "(" + ", ".join(["%s"] * flag) + ")"
    for start in range(0, len(rows), 500):
        chunk = rows[start : start + 500]
        update(
            f"(VALUES {', '.join([row] * len(chunk))}) AS v",
            [value for values in chunk for value in values],
            [values[0] for values in chunk],
        )
    lost = len(results) - len(applied)
    if lost:
        log.warning("%d results came back after their lease was taken over", lost)
    return applied


def _applied_row(r: Result, now: Any, adapt: Callable[[datetime], Any]) -> tuple[Any, ...]:
    """A result's values for `_apply`: the id, `_UPDATED`'s, then whether it is uncertain.
    `now` is adapted already; `adapt`: the connection's `adapt_datetimefield_value`."""
    final = r.state in _FINAL
    pending, sent = r.state == State.PENDING, r.state == State.SENT
    return (
        r.job.id,
        r.state,
        r.reason,
        (r.detail or "")[:300],
        adapt(r.next_attempt_at) if pending and r.next_attempt_at is not None else None,
        r.job.attempts,
        r.job.form,
        r.message_id,
        adapt(r.started_at) if sent and r.started_at is not None else None,
        now if final else None,
        r.job.window_closed if r.window_closed is None else r.window_closed,
        r.digest_id,
        r.uncertain,
    )


def _recategorise(results: list[Result]) -> None:
    """Store the data categories actually sent where the form changed them (utility)."""
    groups: dict[tuple[str, ...], list[int]] = defaultdict(list)
    for result in results:
        if result.job.form == Form.UTILITY:
            groups[tuple(result.job.data_categories)].append(result.job.id)
    for categories, pks in groups.items():
        Notification.objects.filter(pk__any=pks).update(data_categories=list(categories))


def _mark_unreachable(results: list[Result], now: datetime) -> None:
    for result in results:
        Recipient.objects.filter(page_id=result.job.page_id, psid=result.job.psid).update(
            unreachable_at=now, unreachable_reason=result.detail[:300]
        )


def _apply_early_receipts(results: list[Result]) -> set[int]:
    """Delivery receipts that arrived before the message id was committed; returns the
    notifications they marked delivered."""
    by_mid: dict[str, list[int]] = defaultdict(list)  # a digest's originals share one id
    for r in results:
        by_mid[r.message_id].append(r.job.id)
    if not by_mid:
        return set()
    receipts = list(
        DeliveryReceipt.objects.filter(message_id__any=by_mid).values_list(
            "message_id", "delivered_at"
        )
    )
    for message_id, delivered_at in receipts:
        Notification.objects.filter(pk__any=by_mid[message_id], state=State.SENT).update(
            state=State.DELIVERED, delivered_at=delivered_at
        )
    if receipts:
        DeliveryReceipt.objects.filter(message_id__any=[m for m, _ in receipts]).delete()
    return {pk for message_id, _ in receipts for pk in by_mid[message_id]}


def _audit_entry(result: Result) -> AuditEntry:
    """Data left the bank: a message sent, refused by the platform, or perhaps sent."""
    job = result.job
    details: dict[str, Any] = {
        "notification": job.id,
        "event": job.event_ref,
        "event_type": job.event_type,
        "form": job.form,
        "attempt": job.attempts,
        "outcome": result.outcome,
        "message_id": result.message_id,
        "page_id": job.page_id,
        "psid": job.psid,
    }
    if job.digest:  # the send of a digest: every original it carried, and their data
        details["digest"] = digest_listing(job)
    if result.state == State.SENT:
        action = "notification.sent"
        if result.echo_settled:
            details["settled_by"] = "echo"
    elif result.uncertain:
        action = "notification.send_uncertain"
    else:
        action = "notification.send_failed"
    return AuditEntry(
        action=action,
        target_type="linking.consent",
        target_id=str(job.consent_id),
        details=details,
        data_categories=digest_data_categories(job) if job.digest else job.data_categories,
    )
