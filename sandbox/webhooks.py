"""Webhooks from the sandbox to the bank, the way Meta sends them.

Each event is stored as a `WebhookDelivery` and POSTed by a background thread: the body is
JSON with non-ASCII characters escaped (as Meta sends it), signed with the Page's app
secret in `X-Hub-Signature-256` (and the legacy SHA-1 `X-Hub-Signature`). A failed
delivery is retried at once a few times, then with growing delays; after 15 minutes of
failure the Page is flagged as alerted, and after an hour it is unsubscribed.
"""

import hashlib
import hmac
import json
import logging
import threading
import time
from datetime import timedelta
from typing import Any

import httpx
from django.db import close_old_connections, transaction
from django.utils import timezone

from sandbox.models import Page, WebhookDelivery

log = logging.getLogger(__name__)

RESPONSE_DEADLINE_SECONDS = 5.0
IMMEDIATE_RETRIES = 3
BACKOFF_SECONDS = [5, 15, 30, 60, 120, 300, 600]
ALERT_AFTER = timedelta(minutes=15)
UNSUBSCRIBE_AFTER = timedelta(hours=1)
# The field Meta's utility-messages page names for template reviews (messenger-platform.md §2).
TEMPLATE_STATUS_FIELD = "message_template_status_update"


def now_ms() -> int:
    return int(time.time() * 1000)


def encode(body: dict) -> str:
    return json.dumps(body, ensure_ascii=True, separators=(",", ":"))


def signature_headers(raw: bytes, app_secret: str) -> dict[str, str]:
    key = app_secret.encode()
    return {
        "X-Hub-Signature-256": "sha256=" + hmac.new(key, raw, hashlib.sha256).hexdigest(),
        "X-Hub-Signature": "sha1=" + hmac.new(key, raw, hashlib.sha1).hexdigest(),
    }


def messaging_envelope(page: Page, events: list[dict]) -> dict:
    return {
        "object": "page",
        "entry": [{"id": page.page_id, "time": now_ms(), "messaging": events}],
    }


def messaging_event(page: Page, psid: str, **content) -> dict:
    return {
        "sender": {"id": psid},
        "recipient": {"id": page.page_id},
        "timestamp": now_ms(),
        **content,
    }


def enqueue(
    page: Page, field: str, body: dict, *, delay_seconds: float = 0.0
) -> WebhookDelivery | None:
    """Queue one webhook if the Page is subscribed to `field`; delivery starts after commit
    (and after `delay_seconds`)."""
    if not page.webhook_url or page.webhook_disabled_at or field not in page.subscribed_fields:
        return None
    delivery = WebhookDelivery.objects.create(
        page=page,
        field=field,
        body=encode(body),
        next_attempt_at=timezone.now() + timedelta(seconds=delay_seconds),
    )
    transaction.on_commit(dispatcher.wake)
    return delivery


def enqueue_messaging(page: Page, field: str, psid: str, **content) -> WebhookDelivery | None:
    return enqueue(page, field, messaging_envelope(page, [messaging_event(page, psid, **content)]))


def enqueue_echo(
    page: Page,
    psid: str,
    message: dict[str, Any],
    *,
    mid: str,
    app_id: str,
    delay_seconds: float = 0.0,
) -> WebhookDelivery | None:
    """The echo of a message the Page sent (`message_echoes`): from the Page to the person,
    with `is_echo`, the sending app's id, the `mid` and the sender's `metadata`."""
    content = {key: value for key, value in message.items() if key != "quick_replies"}
    event = {
        "sender": {"id": page.page_id},
        "recipient": {"id": psid},
        "timestamp": now_ms(),
        "message": {"is_echo": True, "app_id": int(app_id), "mid": mid, **content},
    }
    return enqueue(
        page, "message_echoes", messaging_envelope(page, [event]), delay_seconds=delay_seconds
    )


def _next_delay(attempts: int) -> float:
    if attempts < IMMEDIATE_RETRIES:
        return 0.2
    return BACKOFF_SECONDS[min(attempts - IMMEDIATE_RETRIES, len(BACKOFF_SECONDS) - 1)]


def attempt(delivery: WebhookDelivery, client: httpx.Client) -> bool:
    """POST one delivery once and record the outcome; True when the bank answered 200."""
    page = delivery.page
    raw = delivery.body.encode("ascii")
    headers = {"Content-Type": "application/json", **signature_headers(raw, page.app_secret)}
    status_code, error = None, ""
    try:
        response = client.post(page.webhook_url, content=raw, headers=headers)
        status_code = response.status_code
        if status_code != 200:
            error = f"answered {status_code}"
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc}"[:300]
    moment = timezone.now()
    delivery.attempts += 1
    delivery.last_status_code = status_code
    delivery.last_error = error
    if not error:
        delivery.status = WebhookDelivery.Status.DELIVERED
        delivery.delivered_at = moment
        delivery.save()
        Page.objects.filter(pk=page.pk).update(webhook_failing_since=None, webhook_alerted_at=None)
        return True
    failing_since = page.webhook_failing_since or moment
    updates = {"webhook_failing_since": failing_since}
    if moment - failing_since >= ALERT_AFTER and not page.webhook_alerted_at:
        updates["webhook_alerted_at"] = moment
    if moment - failing_since >= UNSUBSCRIBE_AFTER:
        updates["webhook_disabled_at"] = moment
        delivery.status = WebhookDelivery.Status.ABANDONED
        WebhookDelivery.objects.filter(page=page, status=WebhookDelivery.Status.PENDING).exclude(
            pk=delivery.pk
        ).update(status=WebhookDelivery.Status.ABANDONED)
    else:
        delivery.next_attempt_at = moment + timedelta(seconds=_next_delay(delivery.attempts))
    delivery.save()
    Page.objects.filter(pk=page.pk).update(**updates)
    return False


def deliver_due(*, limit: int = 100) -> int:
    """Attempt every delivery that is due, oldest first; returns how many were attempted."""
    due = list(
        WebhookDelivery.objects.select_related("page")
        .filter(status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=timezone.now())
        .order_by("id")[:limit]
    )
    if not due:
        return 0
    with httpx.Client(timeout=RESPONSE_DEADLINE_SECONDS) as client:
        for delivery in due:
            attempt(delivery, client)
    return len(due)


def next_due_in() -> float | None:
    upcoming = (
        WebhookDelivery.objects.filter(status=WebhookDelivery.Status.PENDING)
        .order_by("next_attempt_at")
        .values_list("next_attempt_at", flat=True)
        .first()
    )
    if upcoming is None:
        return None
    return max(0.0, (upcoming - timezone.now()).total_seconds())


class Dispatcher:
    """One background thread per process that delivers due webhooks as Meta would."""

    IDLE_SECONDS = 5.0

    def __init__(self) -> None:
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def wake(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="sandbox-webhooks", daemon=True
                )
                self._thread.start()
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        """Finish the current pass and end the thread; the next `wake` starts a new one."""
        with self._lock:
            thread = self._thread
            self._thread = None
        if thread is None:
            return
        self._stop.set()
        self._wake.set()
        thread.join(timeout)
        self._stop.clear()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            wait = self.IDLE_SECONDS
            try:
                close_old_connections()
                while deliver_due():
                    pass
                due_in = next_due_in()
                if due_in is not None:
                    wait = min(wait, due_in)
            except Exception:
                log.exception("sandbox webhook delivery failed")
            finally:
                from django.db import connection

                connection.close()
            self._wake.wait(timeout=wait)


dispatcher = Dispatcher()
