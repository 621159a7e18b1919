"""Requests to the bank's callback URL, signed the Standard Webhooks way, with retries:
fraud answers (`fraud_alert.answered`), links that began or ended (`link.created`,
`link.ended`, written when linking says so inside its transaction: `receivers.py`), and
updates Messenger cannot carry (`notification.undeliverable`, written by the
notifications' hand-back inside its transaction).

A callback is a row first (`BankCallback`, written in the transaction of what it reports);
a worker then POSTs it. The body is fixed when the row is written and `webhook-id` is the
same on every attempt; `webhook-timestamp` and `webhook-signature` are made afresh for
each attempt. A failed attempt is retried after exponential backoff with jitter, from
`next_attempt_at` in PostgreSQL, until `NOTIFICATIONS_CALLBACK_MAX_ATTEMPTS`.

The URL is the bank's staff's to type, so calls go through `core.outbound`: https to
public addresses only, checked on each connection, no redirects. What staff see of a failed
attempt is its HTTP status or that the server could not be reached, never the connection
error: that would tell an open port inside the network from a closed one. The detail goes
to the server log only.
"""

import json
import logging
import time
import uuid
from datetime import datetime, timedelta
from typing import Any

import httpx
from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from conversation.callback_responses import fraud_answer_response_read
from conversation.models import BankCallback, BankCallbackAttempt, FraudAlertAnswer
from core import outbound
from core.api.signing import signature_for
from linking.models import Customer
from notifications.services.delivery import retry_delay
from portal.audit import Actor
from portal.events import DataScope
from portal.models import MessengerIntegration
from portal.services import audit_record

log = logging.getLogger(__name__)

SYSTEM = Actor.system("bank callbacks")
FRAUD_ANSWERED = "fraud_alert.answered"
UNDELIVERABLE = "notification.undeliverable"
LEASE = timedelta(seconds=60)
UNREACHABLE = "The bank's server could not be reached."
State = BankCallback.State


def _iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def callback_queue_for_answer(answer: FraudAlertAnswer) -> BankCallback:
    """Write the callback for a fraud alert's answer; call it in the answer's transaction."""
    event = answer.event
    callback = callback_queue(
        bank_id=answer.bank_id,
        type=FRAUD_ANSWERED,
        at=answer.answered_at,
        fraud_answer=answer,
        data={
            "event_id": event.event_id,
            "alert_id": (event.data or {}).get("alert_id")
            if isinstance(event.data, dict)
            else None,
            "customer_id": event.customer.external_id,
            "account_id": event.account.external_id,
            "answer": answer.answer,
            "answered_at": _iso(answer.answered_at),
        },
    )
    assert callback is not None  # kept even unconfigured
    return callback


def callback_queue(
    *,
    bank_id: int,
    type: str,
    data: dict[str, Any],
    at: datetime,
    fraud_answer: FraudAlertAnswer | None = None,
    keep_unconfigured: bool = True,
) -> BankCallback | None:
    """Write a callback to the bank (`{"type", "timestamp", "data"}`), in the transaction
    of what it reports; a worker is nudged after the commit. Without a callback URL and
    signing secret it is kept as `not_configured` for the staff to see, or, without
    `keep_unconfigured`, not written at all (None)."""
    body = {"type": type, "timestamp": _iso(at), "data": data}
    integration = MessengerIntegration.objects.filter(bank_id=bank_id).first()
    url = integration.callback_url if integration is not None else ""
    configured = bool(url and integration is not None and integration.callback_signing_secret)
    if not configured and not keep_unconfigured:
        return None
    callback = BankCallback.objects.create(
        bank_id=bank_id,
        fraud_answer=fraud_answer,
        type=type,
        webhook_id=f"msg_{uuid.uuid4().hex}",
        body=json.dumps(body, separators=(",", ":"), ensure_ascii=False),
        url=url,
        state=State.PENDING if configured else State.NOT_CONFIGURED,
        next_attempt_at=timezone.now() if configured else None,
    )
    if configured:
        from conversation import tasks

        transaction.on_commit(lambda: tasks.deliver_bank_callback.delay(callback.pk))
    return callback


def callbacks_queue_many(
    *, bank_id: int, type: str, items: list[dict[str, Any]], at: datetime
) -> list[str]:
    """Write one callback per `data` in `items`, of one type, in the caller's transaction
    (a hand-back writes hundreds at once); returns their `webhook-id`s in order, or none
    if the bank has no callback URL and signing secret. Each is nudged after the commit."""
    integration = MessengerIntegration.objects.filter(bank_id=bank_id).first()
    if integration is None or not (
        integration.callback_url and integration.callback_signing_secret
    ):
        return []
    stamp = _iso(at)
    rows = BankCallback.objects.bulk_create(
        [
            BankCallback(
                bank_id=bank_id,
                type=type,
                webhook_id=f"msg_{uuid.uuid4().hex}",
                body=json.dumps(
                    {"type": type, "timestamp": stamp, "data": data},
                    separators=(",", ":"),
                    ensure_ascii=False,
                ),
                url=integration.callback_url,
                state=State.PENDING,
                next_attempt_at=at,
            )
            for data in items
        ]
    )
    from conversation import tasks

    ids = [row.pk for row in rows]

    def nudge() -> None:
        for pk in ids:
            tasks.deliver_bank_callback.delay(pk)

    transaction.on_commit(nudge, robust=True)
    return [row.webhook_id for row in rows]


LINK_TYPES = ("link.created", "link.ended")


def link_callbacks_erase(customer: Customer) -> int:
    """Take the customer's Messenger name out of the link callbacks kept for them (a
    data-subject erasure); the rest stays, naming the customer by the bank's id only."""
    changed = 0
    rows = BankCallback.objects.filter(
        bank_id=customer.bank_id,
        type__in=LINK_TYPES,
        body__contains=json.dumps({"customer_id": customer.external_id}, separators=(",", ":"))[
            1:-1
        ],
    )
    for callback in rows:
        body = json.loads(callback.body)
        data = body.get("data") or {}
        if data.get("customer_id") != customer.external_id or not data.get("messenger_name"):
            continue
        data["messenger_name"] = None
        BankCallback.objects.filter(pk=callback.pk).update(
            body=json.dumps(body, separators=(",", ":"), ensure_ascii=False)
        )
        changed += 1
    return changed


def callback_headers(
    *, secret: str, webhook_id: str, body: bytes, at: datetime, also: tuple[str, ...] = ()
) -> dict[str, str]:
    """The Standard Webhooks headers of a callback. `webhook-signature` carries one
    signature per secret, space-separated: the current secret's, then any in `also` (the
    previous secret while a rotation's overlap lasts)."""
    timestamp = str(int(at.timestamp()))
    signatures = [
        signature_for(secret=key, webhook_id=webhook_id, timestamp=timestamp, body=body)
        for key in (secret, *also)
    ]
    return {
        "content-type": "application/json",
        "webhook-id": webhook_id,
        "webhook-timestamp": timestamp,
        "webhook-signature": " ".join(signatures),
        "user-agent": "bankside-callbacks",
    }


def callback_deliver(
    *, callback_id: int, now: datetime | None = None, transport: httpx.BaseTransport | None = None
) -> str:
    """POST one due callback once; returns its state afterwards.

    Claimed with a conditional update (due and pending → delivering, under a lease), so
    two workers never post it at once. A 2xx answer delivers it; anything else, or no
    answer, is a failed attempt.
    """
    now = now or timezone.now()
    claimed = BankCallback.objects.filter(
        pk=callback_id, state=State.PENDING, next_attempt_at__lte=now
    ).update(state=State.DELIVERING, lease_expires_at=now + LEASE, attempts=F("attempts") + 1)
    if not claimed:
        return (
            BankCallback.objects.filter(pk=callback_id).values_list("state", flat=True).first()
            or ""
        )
    callback = BankCallback.objects.select_related("bank").get(pk=callback_id)
    integration = MessengerIntegration.objects.filter(bank_id=callback.bank_id).first()
    url = (integration.callback_url if integration is not None else "") or callback.url
    body = callback.body.encode()
    started_at, started = timezone.now(), time.perf_counter()
    signing = integration.callback_signing_secrets(started_at) if integration is not None else []
    secret, *also = signing or [""]
    status_code, error, answered = None, "", b""
    if not secret or not url:
        error = "The bank has no callback URL or signing secret."
    else:
        try:
            outbound.check_url(url, resolve_host=False)
            headers = callback_headers(
                secret=secret,
                webhook_id=callback.webhook_id,
                body=body,
                at=started_at,
                also=tuple(also),
            )
            with outbound.client(
                timeout=settings.NOTIFICATIONS_CALLBACK_TIMEOUT_SECONDS, transport=transport
            ) as client:
                response = client.post(url, content=body, headers=headers)
            status_code = response.status_code
            if not 200 <= status_code < 300:
                error = f"The bank's server answered {status_code}."
            else:
                answered = response.content
        except (httpx.HTTPError, ValueError) as exc:
            log.warning(
                "callback %s to bank %s not delivered: %s: %s",
                callback.webhook_id,
                callback.bank_id,
                type(exc).__name__,
                exc,
            )
            error = UNREACHABLE
    latency = max(0, round((time.perf_counter() - started) * 1000))
    return _record(
        callback, started_at, latency, status_code, error, url, now=now, answered=answered
    )


@transaction.atomic
def _record(
    callback: BankCallback,
    started_at: datetime,
    latency: int,
    status_code: int | None,
    error: str,
    url: str,
    *,
    now: datetime,
    answered: bytes = b"",
) -> str:
    bank_answer = (
        fraud_answer_response_read(answered)
        if callback.fraud_answer_id is not None and not error
        else None
    )
    BankCallbackAttempt.objects.create(
        callback=callback,
        number=callback.attempts,
        started_at=started_at,
        latency_ms=latency,
        status_code=status_code,
        error=error,
        response_note=bank_answer.note[:300] if bank_answer is not None else "",
    )
    moment = timezone.now()
    if not error:
        state, values = State.DELIVERED, {"delivered_at": moment, "next_attempt_at": None}
    elif callback.attempts >= settings.NOTIFICATIONS_CALLBACK_MAX_ATTEMPTS:
        state, values = State.DEAD, {"next_attempt_at": None}
    else:
        delay = retry_delay(
            callback.attempts,
            base=settings.NOTIFICATIONS_CALLBACK_RETRY_BASE_SECONDS,
            cap=settings.NOTIFICATIONS_CALLBACK_RETRY_MAX_DELAY_SECONDS,
        )
        base = max(now, moment)  # a caller's clock may run ahead (the sweeper, tests)
        state, values = State.PENDING, {"next_attempt_at": base + timedelta(seconds=delay)}
    BankCallback.objects.filter(pk=callback.pk, state=State.DELIVERING).update(
        state=state, lease_expires_at=None, url=url, **values
    )
    if state != State.PENDING:
        audit_record(
            actor=SYSTEM,
            action="callback.delivered" if state == State.DELIVERED else "callback.abandoned",
            bank=callback.bank,
            target=callback,
            details={
                "type": callback.type,
                "webhook_id": callback.webhook_id,
                "attempts": callback.attempts,
                "status_code": status_code,
                "error": error,
            },
            data_categories=[DataScope.FRAUD_ALERTS]
            if state == State.DELIVERED and callback.type == FRAUD_ANSWERED
            else [],
        )
    if callback.fraud_answer_id is not None:
        from conversation.services import fraud_denied_follow_up

        fraud_denied_follow_up(answer_id=callback.fraud_answer_id, bank_answer=bank_answer)
    return state


def callbacks_due(*, now: datetime | None = None, limit: int = 100) -> list[int]:
    now = now or timezone.now()
    BankCallback.objects.filter(state=State.DELIVERING, lease_expires_at__lt=now).update(
        state=State.PENDING, lease_expires_at=None, next_attempt_at=now
    )
    return list(
        BankCallback.objects.filter(state=State.PENDING, next_attempt_at__lte=now)
        .order_by("next_attempt_at", "id")
        .values_list("pk", flat=True)[:limit]
    )


@transaction.atomic
def callback_retry_now(*, actor: Actor, callback: BankCallback) -> BankCallback:
    """Staff send a dead callback again, with a fresh retry budget."""
    updated = BankCallback.objects.filter(pk=callback.pk, state=State.DEAD).update(
        state=State.PENDING, attempts=0, next_attempt_at=timezone.now()
    )
    if not updated:
        raise ValueError("Only a callback that was given up can be sent again.")
    audit_record(
        actor=actor,
        action="callback.retried",
        bank=callback.bank,
        target=callback,
        details={"webhook_id": callback.webhook_id},
    )
    from conversation import tasks

    transaction.on_commit(lambda: tasks.deliver_bank_callback.delay(callback.pk))
    callback.refresh_from_db()
    return callback
