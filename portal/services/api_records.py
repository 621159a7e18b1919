"""What the API keeps for a bank's requests: the responses to replay for an
`Idempotency-Key` and the ids of signed requests already seen (`core.api`)."""

from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from core.api.keys import IdempotencyKeyReusedError
from core.api.signing import TOLERANCE
from portal.models import Bank, IdempotencyRecord, SignedRequestId

IN_PROGRESS = 0


def idempotency_claim(
    *, bank: Bank, key: str, endpoint: str, fingerprint: str
) -> tuple[IdempotencyRecord, bool]:
    """Claim `key` for this request, or find the response stored for it: (record, claimed).

    Call it inside the transaction of the write it guards and complete the record in the
    same transaction. A concurrent request with the same key blocks on the unique index
    until this one commits, then finds the stored response instead of writing twice.
    """
    now = timezone.now()
    IdempotencyRecord.objects.filter(
        bank=bank, key=key, endpoint=endpoint, expires_at__lte=now
    ).delete()
    try:
        with transaction.atomic():
            record = IdempotencyRecord.objects.create(
                bank=bank,
                key=key,
                endpoint=endpoint,
                fingerprint=fingerprint,
                status_code=IN_PROGRESS,
                content_type="",
                created_at=now,
                expires_at=now + timedelta(hours=IdempotencyRecord.LIFETIME_HOURS),
            )
    except IntegrityError:
        record = IdempotencyRecord.objects.get(bank=bank, key=key, endpoint=endpoint)
        if record.fingerprint != fingerprint:
            raise IdempotencyKeyReusedError(key) from None
        return record, False
    return record, True


def idempotency_complete(
    *, record: IdempotencyRecord, status_code: int, content_type: str, body: str
) -> None:
    record.status_code, record.content_type, record.body = status_code, content_type, body
    record.save(update_fields=["status_code", "content_type", "body"])


def signed_request_id_claim(*, bank: Bank, webhook_id: str) -> bool:
    """Record a signed request's `webhook-id`; False if the bank has used it before."""
    try:
        with transaction.atomic():
            SignedRequestId.objects.create(bank=bank, webhook_id=webhook_id)
    except IntegrityError:
        return False
    return True


def api_records_purge(*, now: datetime | None = None) -> tuple[int, int]:
    """Delete expired idempotency records and signed-request ids past any replay window."""
    now = now or timezone.now()
    records, _ = IdempotencyRecord.objects.filter(expires_at__lte=now).delete()
    ids, _ = SignedRequestId.objects.filter(received_at__lte=now - 2 * TOLERANCE).delete()
    return records, ids
