from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any, TypeVar

from django.conf import settings
from django.db.models import Min, Q, QuerySet
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils import timezone
from django_otp import user_has_device
from django_otp_webauthn.models import WebAuthnCredential

from core.digests import sha256_hex
from portal import checkpoints
from portal.audit import GENESIS_HASH, hash_of
from portal.dashboard import PanelContent
from portal.events import EventType
from portal.models import (
    ApiKey,
    AuditChain,
    AuditCheckpoint,
    AuditEvent,
    AuditIntegrityCheck,
    Bank,
    MessageTemplate,
    MessengerIntegration,
    NotificationPolicy,
    NotificationSettings,
    StaffInvitation,
    StaffMembership,
    UtilityTemplate,
    WorkerHeartbeat,
)
from portal.policies import PolicyRules
from portal.pseudonyms import PERSONAL_KEYS, pseudonyms
from portal.rendering import normalise_locale


@dataclass(frozen=True)
class LaneHead:
    """A lane's key and its head as walked: its last entry's position and hash."""

    key: str
    head_seq: int
    head_hash: str


@dataclass(frozen=True)
class ChainReport:
    """The state of one audit log (every lane of a scope, `key`): intact, or the lane,
    entry and reason where it first breaks."""

    key: str
    bank_slug: str | None
    entries: int
    broken_seq: int | None = None
    broken_event_id: int | None = None
    reason: str = ""
    broken_lane: int | None = None
    lanes: tuple[LaneHead, ...] = ()  # each lane's head as walked, when intact

    @property
    def intact(self) -> bool:
        return not self.reason

    def describe(self) -> str:
        name = f"bank {self.bank_slug}" if self.bank_slug else "platform"
        if self.intact:
            count = len(self.lanes)
            return f"{name}: intact, {self.entries} entries in {count} lane{'s' * (count != 1)}"
        lane = f"lane {self.broken_lane} " if self.broken_lane is not None else ""
        where = f"{lane}entry #{self.broken_seq}" if self.broken_seq else f"{lane}head".strip()
        ident = f" (id {self.broken_event_id})" if self.broken_event_id else ""
        return f"{name}: BROKEN at {where}{ident}: {self.reason}"


@dataclass(frozen=True)
class _LaneWalk:
    """One lane walked: its entries, where it first broke and why, its last hash, and the
    hash of its entry `mark` (for a signed head)."""

    entries: int
    broken_seq: int | None = None
    broken_event_id: int | None = None
    reason: str = ""
    head_hash: str = GENESIS_HASH
    marked: str | None = None


def _lane_walk(
    chain: AuditChain,
    *,
    batch_size: int = 2000,
    through_seq: int | None = None,
    mark: int | None = None,
) -> _LaneWalk:
    """Walk one lane in order and recompute every hash.

    Detects an edited entry (its hash no longer matches), a removed or reordered entry
    (a gap in `seq` or a `prev_hash` that is not the previous entry's hash), an entry
    moved in from another lane (its hash covers its own lane's key), and entries cut off
    the end (the head no longer matches the last entry). With `through_seq`, only entries
    up to that position are checked and the head is the last of them.
    """
    expected_seq, expected_prev, count, marked = 1, GENESIS_HASH, 0, None
    events = AuditEvent.objects.filter(chain=chain).order_by("seq")
    if through_seq is not None:
        events = events.filter(seq__lte=through_seq)
    for event in events.iterator(chunk_size=batch_size):
        count += 1
        reason = _entry_fault(event, chain, expected_seq, expected_prev)
        if reason:
            return _LaneWalk(count, event.seq, event.pk, reason)
        expected_seq, expected_prev = event.seq + 1, event.hash
        if event.seq == mark:
            marked = event.hash
    if through_seq is None and (chain.head_seq != count or chain.head_hash != expected_prev):
        return _LaneWalk(
            count,
            reason=f"its head records {chain.head_seq} entries but {count} remain: "
            "entries were removed from the end",
        )
    return _LaneWalk(count, head_hash=expected_prev, marked=marked)


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


def _lane_fault(scope: str, position: int, chain: AuditChain, bank_id: int | None) -> str:
    """Why the head `chain`, found at `position` among its scope's lanes, does not belong
    there; "" when it does."""
    if chain.lane != position:
        return f"lane {position} is missing: its head and entries were removed"
    if chain.key != AuditChain.lane_key(scope, chain.lane) or chain.bank_id != bank_id:
        return "the lane's head names another audit log"
    return ""


def audit_chain_verify(scope: str, *, batch_size: int = 2000) -> ChainReport:
    """Verify every lane of the audit log `scope` ("bank:5", "platform"): each lane's
    entries (`_lane_walk`), that the lanes are numbered from 0 without a gap, and that each
    lane still reaches its head in the log's newest stored checkpoint, so a lane dropped
    or cut short since then is caught even at the end. The first fault found is reported
    with its lane and entry."""
    chains = list(AuditChain.objects.select_related("bank").filter(scope=scope).order_by("lane"))
    bank_id = None if scope == AuditChain.PLATFORM_KEY else int(scope.partition(":")[2] or 0)
    bank = next((chain.bank for chain in chains if chain.bank_id == bank_id), None)
    slug = bank.slug if bank else (None if bank_id is None else f"#{bank_id}")
    signed = _signed_heads(scope)
    entries, heads = 0, []
    for position, chain in enumerate(chains):
        reason = _lane_fault(scope, position, chain, bank_id)
        if reason:
            return ChainReport(scope, slug, entries, reason=reason, broken_lane=position)
        mark = signed.pop(chain.key, None)
        walk = _lane_walk(chain, batch_size=batch_size, mark=mark[0] if mark else None)
        entries += walk.entries
        if walk.reason:
            return ChainReport(
                scope,
                slug,
                entries,
                walk.broken_seq,
                walk.broken_event_id,
                walk.reason,
                broken_lane=chain.lane,
            )
        if mark and mark[0] and walk.marked != mark[1]:
            return ChainReport(
                scope,
                slug,
                entries,
                reason=f"it no longer reaches entry #{mark[0]} as its last checkpoint signed it",
                broken_lane=chain.lane,
            )
        heads.append(LaneHead(chain.key, walk.entries, walk.head_hash))
    if signed:
        missing = min(signed)
        return ChainReport(
            scope,
            slug,
            entries,
            reason=f"lane {missing} is missing: its last checkpoint signed its head",
        )
    return ChainReport(scope, slug, entries, lanes=tuple(heads))


def _signed_heads(scope: str) -> dict[str, tuple[int, str]]:
    """Each lane's head, {key: (head_seq, head_hash)}, in the newest stored checkpoint of
    `scope` (none when it has none)."""
    checkpoint = AuditCheckpoint.objects.filter(chain__scope=scope).order_by("-signed_at", "-pk")
    newest = checkpoint.select_related("chain").first()
    if newest is None:
        return {}
    if not newest.lanes:  # v1: lane 0 alone
        return {newest.chain.key: (newest.head_seq, newest.head_hash)}
    return {lane["chain"]: (lane["head_seq"], lane["head_hash"]) for lane in newest.lanes}


def audit_scopes(*, bank: Bank | None = None) -> list[str]:
    """The audit logs (scopes) there are: `bank`'s, or every one, in key order."""
    chains = AuditChain.objects.all()
    if bank is not None:
        chains = chains.filter(bank=bank)
    return sorted(set(chains.values_list("scope", flat=True)))


def audit_chains_verify(*, bank: Bank | None = None) -> list[ChainReport]:
    return [audit_chain_verify(scope) for scope in audit_scopes(bank=bank)]


def audit_checkpoint_confirm(payload: dict[str, Any]) -> str:
    """Why a verified checkpoint's heads are no longer in the audit log, or "" when they
    still are: for every lane it lists (each lane of its scope, since v2; one chain in a v1
    checkpoint), the lane is still there, every entry up to its signed `head_seq` is
    intact, and the entry at `head_seq` hashes to its signed `head_hash`."""
    if "lanes" not in payload:
        return _head_confirm(payload, scope=None)
    for lane in payload["lanes"]:
        problem = _head_confirm(lane, scope=payload["scope"])
        if problem:
            return problem
    return ""


def _head_confirm(head: dict[str, Any], *, scope: str | None) -> str:
    chains = AuditChain.objects.select_related("bank").filter(key=head["chain"])
    if scope is not None:
        chains = chains.filter(scope=scope)
    chain = chains.first()
    if chain is None:
        return f"no audit chain {head['chain']!r} here: the lane was removed"
    if head["head_seq"] == 0:
        return ""
    walk = _lane_walk(chain, through_seq=head["head_seq"])
    if walk.reason:
        where = f"entry #{walk.broken_seq} (id {walk.broken_event_id})"
        return f"{chain.key}: BROKEN at {where}: {walk.reason}"
    if walk.entries != head["head_seq"]:
        return f"{chain.key} holds {walk.entries} of the {head['head_seq']} entries signed"
    if walk.head_hash != head["head_hash"]:
        return f"{chain.key}: entry #{head['head_seq']} no longer has the signed hash"
    return ""


@dataclass(frozen=True)
class AuditLogState:
    """One audit log as the integrity pages show it: its lane 0 (`chain`), the entries of
    all its lanes and how many lanes it has."""

    chain: AuditChain
    entries: int
    lanes: int

    @property
    def key(self) -> str:
        return self.chain.scope

    @property
    def bank(self) -> Bank | None:
        return self.chain.bank


def audit_integrity_latest(
    *, bank: Bank | None = None
) -> list[tuple[AuditLogState, AuditIntegrityCheck | None]]:
    """Each audit log (of `bank`, or every one) with its newest integrity check, or None."""
    chains = AuditChain.objects.select_related("bank").order_by("scope", "lane")
    if bank is not None:
        chains = chains.filter(bank=bank)
    logs: dict[str, list[AuditChain]] = {}
    for chain in chains:
        logs.setdefault(chain.scope, []).append(chain)
    latest = []
    for lanes in logs.values():
        first = lanes[0]
        check = (
            AuditIntegrityCheck.objects.filter(chain__scope=first.scope)
            .order_by("-checked_at", "-pk")
            .first()
        )
        state = AuditLogState(first, sum(lane.head_seq for lane in lanes), len(lanes))
        latest.append((state, check))
    return latest


def audit_integrity_last_check(*, bank: Bank):
    return AuditIntegrityCheck.objects.for_bank(bank).order_by("-checked_at", "-pk").first()


def audit_integrity_panel(bank: Bank):
    """The dashboard panel: a red alarm when the bank's last integrity check failed."""
    check = audit_integrity_last_check(bank=bank)
    if check is None:
        return None
    link = reverse("portal:audit_integrity", kwargs={"bank": bank.slug})
    if check.intact:
        return PanelContent(
            value="Intact",
            caption=f"{check.entries} entries, checked {check.checked_at:%d %b %Y %H:%M} UTC",
            link_url=link,
            link_text="Integrity and checkpoints",
        )
    where = f"entry #{check.broken_seq}" if check.broken_seq else "the chain head"
    return PanelContent(
        value="BROKEN",
        caption=f"The audit log is broken at {where}: {check.reason}",
        link_url=link,
        link_text="See the integrity report",
        alarm=True,
    )


def audit_checkpoint_list(*, bank: Bank) -> QuerySet[AuditCheckpoint]:
    return AuditCheckpoint.objects.for_bank(bank).select_related("chain")


def audit_checkpoint_get(*, bank: Bank, pk: int) -> AuditCheckpoint:
    return get_object_or_404(audit_checkpoint_list(bank=bank), pk=pk)


def audit_checkpoint_document(checkpoint: AuditCheckpoint) -> dict:
    """An exported checkpoint: everything a third party needs to check it offline."""
    bank = checkpoint.bank.slug if checkpoint.bank_id else None
    if checkpoint.lanes:
        format_, payload = (
            checkpoints.FORMAT,
            checkpoints.payload(
                scope=checkpoint.chain.scope,
                bank=bank,
                lanes=checkpoint.lanes,
                signed_at=checkpoint.signed_at,
            ),
        )
        reaches = (
            "every lane listed in `payload.lanes` is still there and reaches its `head_hash` "
            "at entry `head_seq`"
        )
    else:  # signed before lanes
        format_, payload = (
            checkpoints.FORMAT_V1,
            checkpoints.payload_v1(
                chain=checkpoint.chain.key,
                bank=bank,
                head_seq=checkpoint.head_seq,
                head_hash=checkpoint.head_hash,
                signed_at=checkpoint.signed_at,
            ),
        )
        reaches = "its audit chain still reaches `head_hash` at entry `head_seq`"
    return {
        "format": format_,
        "algorithm": checkpoint.algorithm,
        "payload": payload,
        "signature": checkpoint.signature,
        "public_key": checkpoint.public_key,
        "bank_name": checkpoint.bank.name if checkpoint.bank_id else None,
        "how_to_verify": (
            "Ed25519-verify `signature` (base64) over the UTF-8 JSON of `payload` with sorted "
            "keys and no whitespace, using `public_key` (base64 of the raw 32-byte key). Then "
            f"`manage.py verify_checkpoint FILE` at the bank checks that {reaches}."
        ),
    }


def worker_heartbeat_latest() -> WorkerHeartbeat | None:
    return WorkerHeartbeat.objects.order_by("-last_seen").first()


def worker_seconds_since_heartbeat() -> float | None:
    latest = worker_heartbeat_latest()
    return (timezone.now() - latest.last_seen).total_seconds() if latest else None


# Staff and access


def staff_has_access(user) -> bool:
    """Whether `user` may use the staff pages at all: a platform admin or staff of a bank."""
    if not user.is_authenticated or not user.is_active:
        return False
    return user.is_superuser or StaffMembership.objects.filter(user=user).exists()


def two_factor_required(user) -> bool:
    """Every staff member signs in with a second factor (`STAFF_TWO_FACTOR_FOR_ALL`).

    Where a development or demo machine relaxes that, platform admins, bank admins, staff
    of banks that require it for everyone, and anyone who has enrolled an authenticator
    still must."""
    if user.is_superuser or settings.STAFF_TWO_FACTOR_FOR_ALL:
        return True
    required = StaffMembership.objects.filter(user=user).filter(
        Q(role=StaffMembership.Role.ADMIN) | Q(bank__require_2fa_for_all=True)
    )
    return required.exists() or user_has_device(user, confirmed=True)


def passkey_list(*, user: Any) -> QuerySet[Any]:
    """The staff member's own passkeys, oldest first: no one sees another's."""
    passkeys: QuerySet[Any] = WebAuthnCredential.objects.filter(user=user)
    return passkeys.order_by("created_at", "pk")


def staff_idle_timeout(user: Any) -> timedelta:
    """How long a staff member's session may sit idle: the shortest of their banks'
    settings, or the deployment's default for platform admins."""
    minutes = StaffMembership.objects.filter(user=user).aggregate(
        shortest=Min("bank__idle_timeout_minutes")
    )["shortest"]
    default = settings.STAFF_IDLE_TIMEOUT_DEFAULT_MINUTES
    if minutes is None:
        minutes = default
    elif user.is_superuser:
        minutes = min(minutes, default)
    return timedelta(minutes=minutes)


def bank_list_for_staff(user) -> QuerySet[Bank]:
    return Bank.objects.for_staff(user).select_related("integration").order_by("name")


def membership_list(*, bank: Bank) -> QuerySet[StaffMembership]:
    return (
        StaffMembership.objects.for_bank(bank)
        .select_related("user")
        .order_by("role", "user__username")
    )


def membership_get(*, bank: Bank, pk: int) -> StaffMembership:
    return get_object_or_404(StaffMembership.objects.for_bank(bank).select_related("user"), pk=pk)


def invitation_list(*, bank: Bank) -> list[StaffInvitation]:
    """Pending invitations first, then the recent history (the last 20)."""
    invitations = list(
        StaffInvitation.objects.for_bank(bank).select_related("created_by", "accepted_by")[:50]
    )
    pending = [i for i in invitations if i.state == StaffInvitation.State.PENDING]
    others = [i for i in invitations if i.state != StaffInvitation.State.PENDING]
    return pending + others[:20]


def invitation_get(*, bank: Bank, pk: int) -> StaffInvitation:
    return get_object_or_404(StaffInvitation.objects.for_bank(bank), pk=pk)


def invitation_get_pending(*, token: str) -> StaffInvitation | None:
    """The pending invitation behind a link's token, or None if it is unusable."""
    invitation = (
        StaffInvitation.objects.select_related("bank").filter(token_hash=sha256_hex(token)).first()
    )
    if invitation is None or invitation.state != StaffInvitation.State.PENDING:
        return None
    return invitation


# Banks, integrations and keys


def integration_for_bank(bank: Bank) -> MessengerIntegration | None:
    return MessengerIntegration.objects.for_bank(bank).first()


def webhook_url(bank: Bank) -> str:
    """The callback URL to paste into Meta's dashboard for this bank's Page."""
    return f"{settings.PUBLIC_BASE_URL}/webhooks/messenger/{bank.slug}/"


def link_url(bank: Bank) -> str:
    """The URL of this bank's Messenger Log In button (account linking)."""
    return f"{settings.PUBLIC_BASE_URL}/link/{bank.slug}/"


def api_key_list(*, bank: Bank) -> QuerySet[ApiKey]:
    return ApiKey.objects.for_bank(bank).select_related("created_by", "rolled_from", "successor")


def api_key_get(*, bank: Bank, pk: int) -> ApiKey:
    return get_object_or_404(ApiKey.objects.for_bank(bank), pk=pk)


def audit_events_for_bank(*, bank: Bank) -> QuerySet[AuditEvent]:
    return AuditEvent.objects.for_bank(bank).order_by("-occurred_at", "-id")


def audit_event_list(*, bank: Bank, filters: dict | None = None) -> QuerySet[AuditEvent]:
    """The bank's entries matching `filters` (the keys of `AuditLogFilterForm`), newest first.

    `actor` matches an actor's id exactly, part of their label, or part of the name of a
    customer or staff member (their ids, through `portal.timeline`'s actor directories);
    `psid` matches the entries holding that person's pseudonymous reference; `action`
    matches an action or any action it starts; dates are whole UTC days, both ends included.
    """
    filters = filters or {}
    events = audit_events_for_bank(bank=bank)
    if actor := filters.get("actor"):
        events = events.filter(_actor_matching(bank, actor))
    if actor_type := filters.get("actor_type"):
        events = events.filter(actor_type=actor_type)
    if psid := filters.get("psid"):
        events = events.filter(_about_psid(psid))
    if action := filters.get("action"):
        events = events.filter(action__startswith=action)
    if target_type := filters.get("target_type"):
        events = events.filter(target_type=target_type)
    if target_id := filters.get("target_id"):
        events = events.filter(target_id=target_id)
    if date_from := filters.get("date_from"):
        events = events.filter(occurred_at__gte=_utc_midnight(date_from))
    if date_to := filters.get("date_to"):
        events = events.filter(occurred_at__lt=_utc_midnight(date_to) + timedelta(days=1))
    return events


def _actor_matching(bank: Bank, text: str) -> Q:
    from portal.timeline import actor_ids_named

    matching = Q(actor_id=text) | Q(actor_label__icontains=text)
    for actor_type, ids in actor_ids_named(bank, text).items():
        matching |= Q(actor_type=actor_type, actor_id__in=ids)
    return matching


def _about_psid(psid: str) -> Q:
    """Entries about the person with this PSID: they hold its reference under any key of
    PSEUDONYM_KEYS (`portal.pseudonyms`), as a detail or as their target."""
    references = pseudonyms(psid)
    about = Q(target_type="messenger.psid", target_id__in=references)
    for key in PERSONAL_KEYS.values():
        about |= Q(**{f"details__{key}__in": references})
    return about


def _utc_midnight(day) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def audit_event_get(*, bank: Bank, pk: int) -> AuditEvent:
    return get_object_or_404(AuditEvent.objects.for_bank(bank).select_related("chain"), pk=pk)


@dataclass(frozen=True)
class BankDashboard:
    """What a bank's dashboard shows at a glance."""

    bank: Bank
    integration: MessengerIntegration | None
    staff_count: int
    pending_invitations: int
    active_api_keys: int
    recent_events: list[AuditEvent]


def bank_dashboard(*, bank: Bank, recent: int = 10) -> BankDashboard:
    now = timezone.now()
    return BankDashboard(
        bank=bank,
        integration=integration_for_bank(bank),
        staff_count=StaffMembership.objects.for_bank(bank).count(),
        pending_invitations=StaffInvitation.objects.for_bank(bank)
        .filter(accepted_at__isnull=True, revoked_at__isnull=True, expires_at__gt=now)
        .count(),
        active_api_keys=ApiKey.objects.for_bank(bank).filter(revoked_at__isnull=True).count(),
        recent_events=list(audit_events_for_bank(bank=bank)[:recent]),
    )


# Notification policies and templates


def notification_settings_for(bank: Bank) -> NotificationSettings:
    """The bank's consent settings; the defaults (unsaved) if it has none yet."""
    found = NotificationSettings.objects.for_bank(bank).first()
    return found or NotificationSettings(bank=bank)


def notification_policy_list(*, bank: Bank) -> list[NotificationPolicy]:
    """One policy per event type, in the event types' order; unsaved defaults fill gaps."""
    stored = {p.event_type: p for p in NotificationPolicy.objects.for_bank(bank)}
    return [
        stored.get(event_type) or NotificationPolicy(bank=bank, event_type=event_type)
        for event_type in EventType.values
    ]


def notification_policy_get(*, bank: Bank, pk: int) -> NotificationPolicy:
    return get_object_or_404(
        NotificationPolicy.objects.for_bank(bank).select_related("bank"), pk=pk
    )


def policy_rules_for(bank: Bank) -> dict[str, PolicyRules]:
    """Every event type's rules at `bank`, ready for `portal.policies.decide`."""
    return {policy.event_type: policy.rules() for policy in notification_policy_list(bank=bank)}


def message_template_list(*, bank: Bank) -> list[MessageTemplate]:
    """The bank's templates, default locale first within each event type."""
    default = normalise_locale(bank.default_locale)
    templates = MessageTemplate.objects.for_bank(bank).prefetch_related("utility_templates")
    order = {event_type: i for i, event_type in enumerate(EventType.values)}
    return sorted(
        templates, key=lambda t: (order.get(t.event_type, 99), t.locale != default, t.locale)
    )


def message_template_get(*, bank: Bank, pk: int) -> MessageTemplate:
    return get_object_or_404(MessageTemplate.objects.for_bank(bank).select_related("bank"), pk=pk)


T = TypeVar("T")


def message_template_for(*, bank: Bank, event_type: str, locale: str) -> MessageTemplate | None:
    """The template to send for `event_type` to a customer who reads `locale` (see
    `template_pick`)."""
    candidates = {
        t.locale: t for t in MessageTemplate.objects.for_bank(bank).filter(event_type=event_type)
    }
    return template_pick(candidates, locale=locale, default_locale=bank.default_locale)


def template_pick(candidates: Mapping[str, T], *, locale: str, default_locale: str) -> T | None:
    """Of one event type's templates by locale, the one for a customer who reads `locale`
    (see `template_locale_pick`)."""
    picked = template_locale_pick(candidates, locale=locale, default_locale=default_locale)
    return None if picked is None else candidates[picked]


def template_locale_pick(
    candidates: Mapping[str, object], *, locale: str, default_locale: str
) -> str | None:
    """Of one event type's templates by locale, the locale of the one for a customer who
    reads `locale`.

    The exact locale (`pt_BR`), else its language (`pt`), else any regional variant of
    that language, else the bank's default locale. A text in another language than the
    customer's is formatted in its own locale (`portal.languages.formatting_locale`).
    """
    wanted = normalise_locale(locale)
    language = wanted.split("_", 1)[0]
    if wanted in candidates:
        return wanted
    if language in candidates:
        return language
    regional = sorted(code for code in candidates if code.split("_", 1)[0] == language)
    if regional:
        return regional[0]
    default = normalise_locale(default_locale)
    return default if default in candidates else None


def utility_template_for(*, template: MessageTemplate) -> UtilityTemplate | None:
    """The newest approved utility registration of `template`, for out-of-window sends."""
    return (
        UtilityTemplate.objects.filter(
            message_template=template, status=UtilityTemplate.Status.APPROVED
        )
        .order_by("-version")
        .first()
    )


def utility_template_latest(*, template: MessageTemplate) -> UtilityTemplate | None:
    return UtilityTemplate.objects.filter(message_template=template).order_by("-version").first()


def utility_template_get(*, template: MessageTemplate, pk: int) -> UtilityTemplate:
    return get_object_or_404(
        UtilityTemplate.objects.for_bank(template.bank).filter(message_template=template), pk=pk
    )
