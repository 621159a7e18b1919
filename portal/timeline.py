"""The audit log in plain English: one sentence per entry, for the people who read it.

An entry stores what happened as an action and its details; an auditor reads "Ana Souza
allowed balances and transactions for 2 accounts until 6 Mar 2027". `ACTIONS` names every
action the apps record, with a label (the audit log's action filter offers them) and, for
the common ones, a sentence. Any other action, or details of an unexpected shape, gets a
plain generic sentence: a timeline never fails on an entry.

Sentences are plain text; templates escape them like any other value, so nothing in an
entry's details can reach a page as markup.

Who an actor is comes from the app that owns them: the portal knows staff, linking knows
customers. An app registers an `ActorDirectory` for its actor type (from its
`AppConfig.ready`) that names actors by id and finds them by part of a name, so the
timeline says "Ana Souza" and the actor filter finds her, though entries only hold ids.
"""

from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import QuerySet

from core.registry import Registry
from portal.events import DataScope, EventType
from portal.models import AuditEvent, Bank, StaffMembership

MAX_ACTOR_MATCHES = 200
# Actors whose label is a name (written as its owner wrote it), not a description.
NAMED_ACTORS = {"staff", "api_key"}


@dataclass(frozen=True)
class ActorDirectory:
    """How the app owning an actor type names its actors and finds them by name."""

    # (bank, actor ids) -> {actor id: display name}, for the ids it knows
    names: Callable[[Bank, Collection[str]], Mapping[str, str]]
    # (bank, part of a name) -> the ids of the actors whose name contains it
    search: Callable[[Bank, str], Iterable[str]]


actor_directories: Registry[ActorDirectory] = Registry("audit actor directory")


def register_actor_directory(actor_type: str, directory: ActorDirectory) -> None:
    actor_directories.register(actor_type, directory)


def actor_ids_named(bank: Bank, text: str) -> dict[str, list[str]]:
    """The actors of `bank` whose name contains `text`, as {actor type: [ids]}."""
    found = {}
    for actor_type, directory in actor_directories.as_dict().items():
        ids = [str(i) for i in list(directory.search(bank, text))[:MAX_ACTOR_MATCHES]]
        if ids:
            found[actor_type] = ids
    return found


def actor_names(bank: Bank, events: Iterable[AuditEvent]) -> dict[tuple[str, str], str]:
    """The display names of the actors of `events`, as {(actor type, id): name}."""
    wanted: dict[str, set[str]] = {}
    for event in events:
        if event.actor_id:
            wanted.setdefault(event.actor_type, set()).add(event.actor_id)
    names = {}
    for actor_type, ids in wanted.items():
        directory = actor_directories.get(actor_type)
        if directory is None:
            continue
        for actor_id, name in directory.names(bank, ids).items():
            if name:
                names[(actor_type, str(actor_id))] = name
    return names


# The portal's own actors: staff, named by their full name, else their username.


def _staff_of(bank: Bank) -> QuerySet[Any]:
    from django.contrib.auth import get_user_model

    return get_user_model().objects.filter(
        pk__in=StaffMembership.objects.for_bank(bank).values("user_id")
    )


def _staff_names(bank: Bank, ids: Collection[str]) -> dict[str, str]:
    numeric = [i for i in ids if i.isdigit()]
    users = _staff_of(bank).filter(pk__in=numeric) if numeric else []
    return {str(user.pk): user.get_full_name() or user.get_username() for user in users}


def _staff_search(bank: Bank, text: str) -> list[str]:
    from django.db.models import Q, Value
    from django.db.models.functions import Concat

    users = _staff_of(bank).annotate(full_name=Concat("first_name", Value(" "), "last_name"))
    return [
        str(pk)
        for pk in users.filter(Q(username__icontains=text) | Q(full_name__icontains=text))
        .order_by("pk")
        .values_list("pk", flat=True)[:MAX_ACTOR_MATCHES]
    ]


register_actor_directory("staff", ActorDirectory(names=_staff_names, search=_staff_search))


# Sentences


@dataclass(frozen=True)
class Said:
    """What a sentence is made of: who acted, the entry's details and its target."""

    actor: str
    details: Mapping[str, Any]
    target_type: str
    target_id: str

    def text(self, key: str) -> str:
        """A scalar detail as text ("" when it is missing or not a scalar)."""
        value = self.details.get(key)
        if isinstance(value, bool) or value is None or isinstance(value, dict | list):
            return ""
        return str(value)

    def number(self, key: str) -> int | None:
        value = self.details.get(key)
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    def items(self, key: str) -> list[Any]:
        value = self.details.get(key)
        return value if isinstance(value, list) else []

    @property
    def consent(self) -> str:
        if self.target_type == "linking.consent" and self.target_id:
            return f"consent #{self.target_id}"
        return "the consent"


def _day(value: str) -> str:
    """An ISO date or time as "6 Mar 2027" ("" when it is not one)."""
    try:
        moment = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return ""
    return f"{moment.day} {moment:%b %Y}"


def _listed(words: list[str]) -> str:
    words = [w for w in words if w]
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " and " + words[-1]


def _plural(count: int, noun: str, nouns: str = "") -> str:
    return f"{count} {noun if count == 1 else nouns or noun + 's'}"


_SCOPE_WORDS = {
    DataScope.BALANCES: "balances",
    DataScope.TRANSACTIONS: "transactions",
    DataScope.FRAUD_ALERTS: "fraud alerts",
    DataScope.RECEIPTS_SHIPPING: "receipts and shipping updates",
}


def _scopes(said: Said) -> str:
    return _listed([_SCOPE_WORDS.get(s, str(s)) for s in said.items("scopes") if s]) or "sharing"


def _update(said: Said) -> str:
    """An event type as the update it is, "a fraud alert update"."""
    kind = said.text("event_type")
    if kind in EventType.values:
        return f"a {str(EventType(kind).label).lower()} update"
    return f"a {kind} update" if kind else "an update"


ROLES = set(StaffMembership.Role.values)


def _role(said: Said) -> str:
    """A staff role as a person says it, "a bank admin" ("" when not a role)."""
    role = said.text("role")
    return f"a {str(StaffMembership.Role(role).label).lower()}" if role in ROLES else ""


def _event_label(said: Said) -> str:
    kind = said.text("event_type")
    return str(EventType(kind).label).lower() if kind in EventType.values else kind


def _because(said: Said, key: str = "reason") -> str:
    reason = said.text(key)
    return f" ({reason})" if reason else ""


def _changed(said: Said, what: str) -> str:
    changed = said.details.get("changed")
    names = [str(k).replace("_", " ") for k in changed] if isinstance(changed, dict) else []
    return f"{said.actor} changed {what}" + (f": {_listed(names)}" if names else "")


def _consent_authorised(said: Said) -> str:
    accounts = len(said.items("accounts"))
    until = _day(said.text("expires_at"))
    return (
        f"{said.actor} allowed {_scopes(said)}"
        + (f" for {_plural(accounts, 'account')}" if accounts else "")
        + (f" until {until}" if until else "")
    )


def _link_bound(said: Said) -> str:
    via = said.text("via")
    accounts = len(said.items("accounts"))
    scopes = _scopes(said)
    return (
        f"Messenger linked a chat to {said.consent}"
        + (f" through {via}" if via else "")
        + (f", sharing {scopes}" if scopes != "sharing" else "")
        + (f" for {_plural(accounts, 'account')}" if accounts else "")
    )


def _callback(outcome: str) -> Callable[[Said], str]:
    def sentence(said: Said) -> str:
        kind = said.text("type")
        attempts = said.number("attempts")
        error = said.text("error")
        return (
            f"The bank's {kind + ' ' if kind else ''}callback was {outcome}"
            + (f" after {_plural(attempts, 'attempt')}" if attempts else "")
            + (f" ({error})" if error and outcome == "abandoned" else "")
        )

    return sentence


def _integrity_verified(said: Said) -> str:
    chains = [c for c in said.items("chains") if isinstance(c, dict)]
    broken = [c for c in chains if c.get("intact") is False]
    if broken:
        where, lane = broken[0].get("broken_seq"), broken[0].get("broken_lane")
        at = f" at entry #{where}" if isinstance(where, int) else ""
        at = f" in lane {lane}{at}" if isinstance(lane, int) else at
        return f"{said.actor} verified the audit chain: broken{at}"
    if not chains:
        return f"{said.actor} verified the audit chain"
    entries = [c.get("entries") for c in chains]
    total = sum(e for e in entries if isinstance(e, int))
    return f"{said.actor} verified the audit chain: intact" + (
        f", {_plural(total, 'entry', 'entries')}" if total else ""
    )


def _template(verb: str) -> Callable[[Said], str]:
    def sentence(said: Said) -> str:
        locale = said.text("locale")
        kind = said.text("event_type")
        label = str(EventType(kind).label) if kind in EventType.values else kind
        return (
            f"{said.actor} {verb} the message template"
            + (f" for {label.lower()}" if label else "")
            + (f" ({locale})" if locale else "")
        )

    return sentence


def _key(verb: str) -> Callable[[Said], str]:
    def sentence(said: Said) -> str:
        name = said.text("name")
        text = f"{said.actor} {verb} the API key" + (f" “{name}”" if name else "")
        until = _day(said.text("old_key_works_until"))
        return text + (f"; the old key works until {until}" if until else "")

    return sentence


def _export(said: Said) -> str:
    what = {"audit_events": "the audit log", "links": "the linked accounts"}.get(
        said.text("what"), "records"
    )
    fmt = said.text("format").upper()
    return f"{said.actor} exported {what}" + (f" as {fmt}" if fmt else "")


@dataclass(frozen=True)
class Action:
    label: str
    sentence: Callable[[Said], str] | None = None


ACTIONS: dict[str, Action] = {
    # Consent and link
    "consent.authorised": Action("Consent authorised", _consent_authorised),
    "consent.rejected": Action(
        "Consent rejected", lambda s: f"{s.actor} declined to share anything"
    ),
    "consent.revoked": Action(
        "Consent revoked", lambda s: f"{s.actor} revoked {s.consent}{_because(s)}"
    ),
    "consent.expired": Action(
        "Consent expired", lambda s: f"{s.consent.capitalize()} expired and its link ended"
    ),
    "consent.renewed": Action(
        "Consent renewed",
        lambda s: (
            f"{s.actor} renewed {s.consent}"
            + (f" until {_day(s.text('expires_at'))}" if _day(s.text("expires_at")) else "")
        ),
    ),
    "consent.expiry_reminded": Action(
        "Consent expiry reminded",
        lambda s: (
            f"The customer was reminded that {s.consent} ends"
            + (f" on {_day(s.text('expires_at'))}" if _day(s.text("expires_at")) else "")
        ),
    ),
    "link.bound": Action("Link bound", _link_bound),
    "link.refused": Action(
        "Link refused", lambda s: f"A link from Messenger was refused{_because(s)}"
    ),
    "link.platform_unlinked": Action(
        "Link ended on Messenger", lambda s: f"Messenger was told that {s.consent} ended"
    ),
    "link.message_sent": Action("Link message sent"),
    "link.message_uncertain": Action("Link message perhaps sent"),
    "link.refusal_sent": Action("Link refusal sent"),
    "link.reported_not_me": Action(
        "Link reported as not the customer's",
        lambda s: f"{s.actor} said a new link was not theirs",
    ),
    "link.not_me_refused": Action("Not-me report refused"),
    "link_invitation.issued": Action("Link invitation issued"),
    "link_invitation.opened": Action("Link invitation opened"),
    "customer.created": Action("Customer created"),
    "customer.updated": Action("Customer updated"),
    "customer_data.viewed": Action(
        "Customer data viewed",
        lambda s: (
            f"{s.actor} opened a customer's data"
            + (f" (the {s.text('page')} page)" if s.text("page") else "")
        ),
    ),
    "subject_data.exported": Action(
        "Data-subject export", lambda s: f"{s.actor} downloaded a customer's data"
    ),
    "subject_data.erased": Action(
        "Data-subject erasure", lambda s: f"{s.actor} erased a customer's data{_because(s)}"
    ),
    # Notifications
    "events.ingested": Action(
        "Events received",
        lambda s: (
            f"{s.actor} sent {_plural(s.number('accepted') or 0, 'event')}"
            + f" ({s.number('duplicates') or 0} duplicate, {s.number('rejected') or 0} rejected)"
        ),
    ),
    "notification.sent": Action(
        "Notification sent",
        lambda s: f"{_update(s).capitalize()} was sent to the customer on Messenger",
    ),
    "notification.send_failed": Action(
        "Notification not sent",
        lambda s: f"{_update(s).capitalize()} could not be sent to the customer",
    ),
    "notification.send_uncertain": Action(
        "Notification perhaps sent",
        lambda s: f"{_update(s).capitalize()} may have reached the customer; its echo decides",
    ),
    "notification.handed_back": Action(
        "Notification handed back",
        lambda s: (
            f"{_update(s).capitalize()} was handed back to the bank's own channels" + _because(s)
        ),
    ),
    "notification.replayed": Action(
        "Notification replayed", lambda s: f"{s.actor} replayed {_update(s)}"
    ),
    "notifications.replayed": Action("Notifications replayed"),
    "notifications.cancelled": Action("Notifications cancelled"),
    "notifications.defaults_created": Action("Notification defaults created"),
    "notification_policy.updated": Action(
        "Notification policy changed",
        lambda s: _changed(s, f"the policy for {_event_label(s) or 'an update'}"),
    ),
    "notification_settings.updated": Action(
        "Notification settings changed", lambda s: _changed(s, "the notification settings")
    ),
    "message_template.created": Action("Message template created", _template("created")),
    "message_template.updated": Action("Message template changed", _template("changed")),
    "message_template.deleted": Action("Message template deleted", _template("deleted")),
    "utility_template.submitted": Action("Utility template submitted"),
    "utility_template.status_changed": Action("Utility template status changed"),
    "utility_template.registration_failed": Action("Utility template registration failed"),
    "utility_template.refresh_failed": Action("Utility template refresh failed"),
    # Conversation and callbacks
    "callback.delivered": Action("Callback delivered", _callback("delivered")),
    "callback.abandoned": Action("Callback abandoned", _callback("abandoned")),
    "callback.retried": Action(
        "Callback retried", lambda s: f"{s.actor} sent the bank's callback again"
    ),
    "fraud_alert.answered": Action("Fraud alert answered"),
    "fraud_alert.bank_confirmed": Action("Fraud alert confirmed by the bank"),
    "conversation.message_sent": Action("Chat message sent"),
    "conversation.agent_replied": Action("Agent replied"),
    "conversation.assigned": Action("Conversation assigned"),
    "conversation.resolved": Action("Conversation resolved"),
    "conversation.page_inbox_message": Action("Message in the Page inbox"),
    "conversation_text.saved": Action("Chat text saved"),
    # Staff
    "staff.invited": Action(
        "Staff invited",
        lambda s: (
            f"{s.actor} invited {s.text('email') or 'someone'}"
            + (f" as {_role(s)}" if _role(s) else "")
        ),
    ),
    "staff.invitation_revoked": Action("Staff invitation revoked"),
    "staff.invitation_accepted": Action(
        "Staff invitation accepted",
        lambda s: (
            f"{s.text('user') or s.actor} joined the bank's staff"
            + (f" as {_role(s)}" if _role(s) else "")
        ),
    ),
    "staff.role_granted": Action(
        "Staff role granted",
        lambda s: f"{s.actor} made {s.text('user') or 'a user'} {_role(s) or 'staff'}",
    ),
    "staff.removed": Action(
        "Staff removed",
        lambda s: f"{s.actor} removed {s.text('user') or 'a user'} from the bank's staff",
    ),
    "staff.two_factor_enrolled": Action(
        "Two-factor sign-in set up",
        lambda s: f"{s.text('user') or s.actor} set up two-factor sign-in",
    ),
    "staff.recovery_codes_generated": Action("Recovery codes made"),
    "staff.recovery_codes_regenerated": Action("Recovery codes replaced"),
    "staff.recovery_code_used": Action(
        "Signed in with a recovery code",
        lambda s: (
            f"{s.text('user') or s.actor} signed in with a recovery code"
            + (f" ({s.number('remaining')} left)" if s.number("remaining") is not None else "")
        ),
    ),
    "staff.platform_admin_created": Action("Platform admin created"),
    # Settings, keys and the integration
    "bank.created": Action("Bank created"),
    "bank.updated": Action("Bank settings changed", lambda s: _changed(s, "the bank's settings")),
    "config.changed": Action("Configuration changed", lambda s: _changed(s, "the configuration")),
    "config.erased": Action("Configuration erased"),
    "retention.updated": Action("Retention changed"),
    "retention.purged": Action("Old data purged"),
    "partition.dropped": Action(
        "Old month of records dropped",
        lambda s: (
            f"{s.actor} dropped the {s.text('month')} records of {s.text('table')}"
            f" ({_plural(s.number('rows') or 0, 'row')})"
        ),
    ),
    "linking_flows.updated": Action("Linking flows changed"),
    "identity_provider.configured": Action("Customer sign-in configured"),
    "api_key.created": Action("API key issued", _key("issued")),
    "api_key.revoked": Action("API key revoked", _key("revoked")),
    "api_key.rolled": Action("API key rolled", _key("rolled")),
    "api_key.rate_limit_set": Action("API key rate limit set"),
    "api_signing.enabled": Action("Request signing turned on"),
    "api_signing.disabled": Action("Request signing turned off"),
    "api_signing.rotated": Action("Request signing secret rotated"),
    "secrets.keys_rotated": Action("Encryption keys rotated"),
    "integration.configured": Action("Messenger integration configured"),
    "integration.checked": Action("Messenger connection checked"),
    "integration.went_live": Action("Messenger integration live"),
    "integration.subscribed": Action("Page subscribed to webhooks"),
    "integration.subscription_failed": Action("Page subscription failed"),
    "integration.signing_secret_rotated": Action("Webhook signing secret rotated"),
    "integration.paused": Action(
        "Integration paused", lambda s: f"{s.actor} paused the Messenger integration{_because(s)}"
    ),
    "integration.resumed": Action(
        "Integration resumed", lambda s: f"{s.actor} resumed the Messenger integration"
    ),
    "banks.paused": Action("Banks paused"),
    "platform.checked": Action("Platform checked"),
    # The audit log itself
    "audit.integrity_verified": Action("Audit chain verified", _integrity_verified),
    "audit.checkpoint_signed": Action(
        "Audit checkpoint signed",
        lambda s: (
            f"{s.actor} signed a checkpoint of the audit chain"
            + (
                f" ({s.number('head_seq')} entries in "
                f"{_plural(s.number('lanes') or 0, 'lane', 'lanes')})"
                if s.number("lanes")
                else f" at entry #{s.number('head_seq')}"
                if s.number("head_seq")
                else ""
            )
        ),
    ),
    "audit.exported": Action("Audit log exported", _export),
    "links.exported": Action("Linked accounts exported", _export),
}

_GROUPS = {
    "consent": "Consent",
    "link": "Links",
    "notification": "Notifications",
    "callback": "Callbacks",
    "staff": "Staff",
    "api_key": "API keys",
    "message_template": "Message templates",
    "integration": "Messenger integration",
    "audit": "The audit log",
}


Choice = tuple[str, str]


def action_choices() -> list[tuple[str, str | list[Choice]]]:
    """The action filter's choices: the main families (each with "every … action") first,
    then the other actions, all by label."""
    grouped: dict[str, list[tuple[str, str]]] = {prefix: [] for prefix in _GROUPS}
    others = []
    for action, spec in ACTIONS.items():
        family = action.split(".", 1)[0]
        if family in grouped:
            grouped[family].append((action, spec.label))
        else:
            others.append((action, spec.label))
    choices: list[tuple[str, str | list[Choice]]] = [("", "Any action")]
    for family, title in _GROUPS.items():
        entries = sorted(grouped[family], key=lambda choice: choice[1])
        choices.append((title, [(f"{family}.", f"Every {title.lower()} action"), *entries]))
    choices.append(("Other", sorted(others, key=lambda choice: choice[1])))
    return choices


def action_label(action: str) -> str:
    spec = ACTIONS.get(action)
    if spec is not None:
        return spec.label
    words = action.replace("_", " ").replace(".", ": ", 1)
    return words[:1].upper() + words[1:]


def actor_name(event: AuditEvent, names: Mapping[tuple[str, str], str] | None = None) -> str:
    """Who acted, as a person reads it: their name when known, else the entry's label."""
    known = (names or {}).get((event.actor_type, event.actor_id))
    return known or event.actor_label or str(event.get_actor_type_display())


def sentence(event: AuditEvent, names: Mapping[tuple[str, str], str] | None = None) -> str:
    """The entry as one plain-English sentence (plain text: escape it when drawing it)."""
    said = Said(
        actor=actor_name(event, names),
        details=event.details if isinstance(event.details, dict) else {},
        target_type=event.target_type,
        target_id=event.target_id,
    )
    spec = ACTIONS.get(event.action)
    text = ""
    if spec is not None and spec.sentence is not None:
        try:
            text = spec.sentence(said)
        except (TypeError, ValueError, AttributeError, KeyError):
            text = ""
    if not text:
        return f"{action_label(event.action)} by {said.actor}."
    named = event.actor_type in NAMED_ACTORS or (event.actor_type, event.actor_id) in (names or {})
    if not (named and text.startswith(said.actor)):
        text = text[0].upper() + text[1:]  # a person's name or username stays as written
    return text + "."


@dataclass(frozen=True)
class TimelineEntry:
    event: AuditEvent
    actor: str
    sentence: str


def timeline(bank: Bank, events: Iterable[AuditEvent]) -> list[TimelineEntry]:
    """`events` ready for the timeline: each with its actor's name and its sentence."""
    events = list(events)
    names = actor_names(bank, events)
    return [TimelineEntry(e, actor_name(e, names), sentence(e, names)) for e in events]
