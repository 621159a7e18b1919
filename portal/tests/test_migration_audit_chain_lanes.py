"""The migration to lanes: every existing chain becomes lane 0 of its log, under the key
its entries' hashes cover, so they all still verify; the other lanes are made empty."""

import pytest
from django.utils import timezone

from core.tests.migrations import migrate_to, schema_at
from portal.audit import GENESIS_HASH, entry_hash

BEFORE = [("portal", "0028_notification_policy_first_versions")]
AFTER = [("portal", "0029_audit_chain_lanes")]


@pytest.fixture
def before_lanes(transactional_db):
    """The schema before lanes; put back to the latest whatever happens."""
    with schema_at(BEFORE) as apps:
        yield apps


def append(apps, chain, bank_id, action):
    """An entry appended as the one writer did before lanes."""
    fields = {
        "bank_id": bank_id,
        "occurred_at": timezone.now(),
        "actor_type": "system",
        "actor_id": "",
        "actor_label": "before",
        "action": action,
        "target_type": "",
        "target_id": "",
        "request_id": "",
        "source_ip": None,
        "details": {"n": chain.head_seq},
        "data_categories": [],
        "seq": chain.head_seq + 1,
        "prev_hash": chain.head_hash,
    }
    digest = entry_hash(chain_key=chain.key, **fields)
    apps.get_model("portal", "AuditEvent").objects.create(chain=chain, hash=digest, **fields)
    chain.head_seq, chain.head_hash = fields["seq"], digest
    chain.save()


def test_existing_chains_become_lane_zero_and_still_verify(before_lanes, settings):
    apps = before_lanes
    bank = apps.get_model("portal", "Bank").objects.create(name="Harbour", slug="harbour")
    chain_model = apps.get_model("portal", "AuditChain")
    chains = [
        chain_model.objects.create(key=f"bank:{bank.pk}", bank=bank, head_hash=GENESIS_HASH),
        chain_model.objects.create(key="platform", head_hash=GENESIS_HASH),
    ]
    for chain, bank_id in zip(chains, (bank.pk, None), strict=True):
        for action in ("config.changed", "config.checked"):
            append(apps, chain, bank_id, action)

    migrate_to(AFTER)

    from portal.audit import Actor
    from portal.models import AuditChain, Bank
    from portal.selectors import audit_chains_verify
    from portal.services import audit_record

    scope = f"bank:{bank.pk}"
    lane_zero = AuditChain.objects.get(key=scope)
    assert (lane_zero.scope, lane_zero.lane, lane_zero.head_seq) == (scope, 0, 2)
    assert AuditChain.objects.filter(scope=scope).count() == settings.AUDIT_CHAIN_LANES
    assert AuditChain.objects.get(scope=scope, lane=1).key == f"{scope}/1"
    assert AuditChain.objects.get(key="platform").scope == "platform"
    assert [report.describe() for report in audit_chains_verify()] == [
        f"bank harbour: intact, 2 entries in {settings.AUDIT_CHAIN_LANES} lanes",
        f"platform: intact, 2 entries in {settings.AUDIT_CHAIN_LANES} lanes",
    ]
    entry = audit_record(
        actor=Actor.system("after"), action="config.changed", bank=Bank.objects.get()
    )
    assert (entry.chain_id, entry.seq, entry.prev_hash) == (lane_zero.pk, 3, lane_zero.head_hash)
    assert all(report.intact for report in audit_chains_verify())
