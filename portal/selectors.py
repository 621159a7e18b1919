from dataclasses import dataclass

from django.utils import timezone

from portal.audit import GENESIS_HASH, hash_of
from portal.models import AuditChain, AuditEvent, Bank, WorkerHeartbeat


@dataclass(frozen=True)
class ChainReport:
    """The state of one audit chain: intact, or where and how it first breaks."""

    key: str
    bank_slug: str | None
    entries: int
    broken_seq: int | None = None
    broken_event_id: int | None = None
    reason: str = ""

    @property
    def intact(self) -> bool:
        return not self.reason

    def describe(self) -> str:
        name = f"bank {self.bank_slug}" if self.bank_slug else "platform"
        if self.intact:
            return f"{name}: intact, {self.entries} entries"
        where = f"entry #{self.broken_seq}" if self.broken_seq else "chain head"
        ident = f" (id {self.broken_event_id})" if self.broken_event_id else ""
        return f"{name}: BROKEN at {where}{ident}: {self.reason}"


def audit_chain_verify(chain: AuditChain, *, batch_size: int = 2000) -> ChainReport:
    """Walk one chain in order and recompute every hash.

    Detects an edited entry (its hash no longer matches), a removed or reordered entry
    (a gap in `seq` or a `prev_hash` that is not the previous entry's hash), and entries
    cut off the end (the head no longer matches the last entry).
    """
    slug = chain.bank.slug if chain.bank_id else None
    expected_seq, expected_prev, count = 1, GENESIS_HASH, 0
    events = AuditEvent.objects.filter(chain=chain).order_by("seq")
    for event in events.iterator(chunk_size=batch_size):
        count += 1
        reason = _entry_fault(event, chain, expected_seq, expected_prev)
        if reason:
            return ChainReport(chain.key, slug, count, event.seq, event.pk, reason)
        expected_seq, expected_prev = event.seq + 1, event.hash
    if chain.head_seq != count or chain.head_hash != expected_prev:
        return ChainReport(
            chain.key,
            slug,
            count,
            None,
            None,
            f"chain head records {chain.head_seq} entries but {count} remain: "
            "entries were removed from the end",
        )
    return ChainReport(chain.key, slug, count)


def _entry_fault(
    event: AuditEvent, chain: AuditChain, expected_seq: int, expected_prev: str
) -> str:
    if event.seq != expected_seq:
        return f"expected entry #{expected_seq} here: entries are missing or moved"
    if event.bank_id != chain.bank_id:
        return "entry names a different bank than its chain"
    if event.prev_hash != expected_prev:
        return "previous-hash link does not match the entry before it"
    if hash_of(event, chain.key) != event.hash:
        return "contents do not match the entry's hash: the entry was altered"
    return ""


def audit_chains_verify(*, bank: Bank | None = None) -> list[ChainReport]:
    chains = AuditChain.objects.select_related("bank").order_by("key")
    if bank is not None:
        chains = chains.filter(bank=bank)
    return [audit_chain_verify(chain) for chain in chains]


def worker_heartbeat_latest() -> WorkerHeartbeat | None:
    return WorkerHeartbeat.objects.order_by("-last_seen").first()


def worker_seconds_since_heartbeat() -> float | None:
    latest = worker_heartbeat_latest()
    return (timezone.now() - latest.last_seen).total_seconds() if latest else None
