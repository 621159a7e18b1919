"""Events, notifications, the outcome feed and the delivery attempts, partitioned by month
on PostgreSQL: months made ahead by beat, ids that begin with their month (a
notification's with its event's), the rules that span months (an event id once per bank,
one message in flight per person), and retention by whole months."""

import uuid
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.db import connection
from django.db.backends.sqlite3.base import DatabaseWrapper as SQLiteWrapper
from django.utils import timezone

from bankside.settings.base import partition_months_from_env
from core.db import partitions
from core.db.partitions import MONTH_SHIFT, Month
from notifications import selectors, services, tasks
from notifications.models import DeliveryAttempt, Event, EventKey, InFlight, Notification, Outcome
from notifications.services import partitions as partitioned
from notifications.services.partitions import keep_months
from notifications.tests.factories import EventFactory, event_payload
from notifications.tests.months import event_in, months_made, notifications_written
from portal.models import AuditEvent, RetentionPolicy
from portal.tests.factories import BankFactory

OUTCOMES = Outcome._meta.db_table
ATTEMPTS = DeliveryAttempt._meta.db_table
EVENTS = Event._meta.db_table
NOTIFICATIONS = Notification._meta.db_table
ALL = (EVENTS, NOTIFICATIONS, OUTCOMES, ATTEMPTS)

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="partitions are PostgreSQL's"
)


def post(api, *events):
    response = api.post("/api/v1/events", {"events": list(events)}, format="json")
    assert response.status_code == 202, response.content


def partition_of(table, pk):
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT tableoid::regclass::text FROM {table} WHERE id = %s", [pk])
        return cursor.fetchone()[0]


def months_of(table):
    return [p.label for p in partitions.partitions_list(table)]


def outcome_in(month: Month, bank, *, day=1, **fields):
    """An outcome written in `month` (its id taken as at that moment)."""
    at = month.start + timedelta(days=day - 1, hours=12)
    return Outcome.objects.create(
        id=partitions.month_id(OUTCOMES, at),
        bank=bank,
        type="event.accepted",
        occurred_at=at,
        **fields,
    )


def legacy_partition(table: str) -> None:
    """`table`'s legacy partition, made again (empty) where an earlier test dropped it."""
    if "legacy" not in months_of(table):
        with connection.cursor() as cursor:
            cursor.execute(
                f"CREATE TABLE {partitions.partition_name(table, None)} PARTITION OF {table}"
                f" FOR VALUES FROM (MINVALUE) TO ({partitions.LEGACY_END})"
            )


# Made ahead


@pytest.mark.django_db
def test_beat_makes_this_month_and_the_next_ones_ahead():
    later = datetime(2031, 5, 10, tzinfo=UTC)

    made = services.partitions_create_ahead(ahead=2, now=later)

    assert made == {table: ["2031-05", "2031-06", "2031-07"] for table in ALL}
    for table in ALL:
        assert {"2031-05", "2031-06", "2031-07"} <= set(months_of(table))


@pytest.mark.django_db
def test_making_partitions_again_changes_nothing():
    later = datetime(2031, 5, 10, tzinfo=UTC)
    services.partitions_create_ahead(ahead=1, now=later)
    before = months_of(OUTCOMES)

    assert services.partitions_create_ahead(ahead=1, now=later) == {table: [] for table in ALL}
    assert months_of(OUTCOMES) == before


@pytest.mark.django_db
def test_the_beat_task_keeps_the_settings_months_ahead_ready():
    assert "notifications.create_partitions" in {
        entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()
    }
    tasks.create_partitions()

    this = Month.of(timezone.now())
    wanted = {str(this + n) for n in range(settings.NOTIFICATIONS_PARTITIONS_AHEAD + 1)}
    for table in ALL:
        assert wanted <= set(months_of(table))


@pytest.mark.django_db
def test_the_command_makes_partitions_ahead_and_lists_them(capsys):
    this = Month.of(timezone.now())

    call_command("partitions", ahead=4)

    out = capsys.readouterr().out
    assert f"{OUTCOMES}_{(this + 4).year:04d}_{(this + 4).month:02d}" in out
    assert str(this + 4) in months_of(ATTEMPTS)
    assert "keeps 14 months" in out


@pytest.mark.django_db
def test_the_metrics_say_how_many_months_are_ready(client, settings):
    settings.METRICS_TOKEN = "metrics-token-0123456789abcdefghijklmnopqrstuvwxyz"
    later = timezone.now() + timedelta(days=400)  # past the months made so far
    services.partitions_create_ahead(ahead=1, now=later)

    assert selectors.partition_months_ready(now=later) == dict.fromkeys(ALL, 2)
    assert selectors.partition_months_ready(now=later + timedelta(days=70)) == dict.fromkeys(ALL, 0)
    body = client.get(
        "/metrics", HTTP_AUTHORIZATION=f"Bearer {settings.METRICS_TOKEN}"
    ).content.decode()
    ready = settings.NOTIFICATIONS_PARTITIONS_AHEAD + 1
    assert f'bankside_partition_months_ready{{table="{OUTCOMES}"}} {ready}.0' in body


# Month-prefixed ids


@pytest.mark.django_db
def test_an_outcome_lands_in_this_months_partition(api, card):
    before = Month.of(timezone.now())
    post(api, event_payload(account=card))
    after = Month.of(timezone.now())

    outcome = Outcome.objects.get()

    month = Month(outcome.id >> MONTH_SHIFT)
    assert month in (before, after)
    assert partition_of(OUTCOMES, outcome.id) == partitions.partition_name(OUTCOMES, month)


@pytest.mark.django_db
def test_a_delivery_attempt_lands_in_this_months_partition(linked, linked_api, graph):
    post(linked_api, event_payload(account=linked.card))
    services.deliveries_run(seconds=0)

    (attempt,) = DeliveryAttempt.objects.all()

    month = Month(attempt.id >> MONTH_SHIFT)
    assert month == Month.of(attempt.started_at) or month == Month.of(timezone.now())
    assert partition_of(ATTEMPTS, attempt.id) == partitions.partition_name(ATTEMPTS, month)


@pytest.mark.django_db
def test_ids_begin_with_their_month_and_keep_increasing(api, card):
    post(api, *(event_payload(account=card) for _ in range(3)))
    post(api, event_payload(account=card))

    ids = list(Outcome.objects.values_list("id", flat=True))

    assert ids == sorted(ids) and len(set(ids)) == 4
    assert {pk >> MONTH_SHIFT for pk in ids} <= {Month.of(timezone.now()).index}
    assert all(pk < 2**53 for pk in ids)
    later = partitions.month_id(OUTCOMES, timezone.now() + timedelta(days=40))
    assert later > max(ids) and later >> MONTH_SHIFT == Month.of(timezone.now()).index + 1


@pytest.mark.django_db
def test_an_id_takes_the_utc_month_of_its_moment_on_both_sides_of_every_boundary():
    moments = []
    for index in range(Month.named(2020, 1).index, Month.named(2040, 12).index + 1):
        start = Month(index).start
        moments += [start - timedelta(microseconds=1), start, start + timedelta(days=14)]
    # A moment given in another zone takes the month it is in UTC.
    late = timezone.get_fixed_timezone(-120)
    moments.append(datetime(2026, 12, 31, 23, 30, tzinfo=late))

    months = [partitions.month_id(OUTCOMES, at) >> MONTH_SHIFT for at in moments]

    assert months == [Month.of(at).index for at in moments]
    assert months[-1] == Month.named(2027, 1).index


@pytest.mark.django_db
def test_the_feed_cursor_pages_across_a_month_boundary(api, card, bank):
    post(api, *(event_payload(account=card) for _ in range(3)))
    first = api.get("/api/v1/outcomes", {"limit": 2}).json()
    next_month = Month.of(timezone.now()) + 1
    services.partitions_create_ahead(ahead=1)
    later = [outcome_in(next_month, bank, day=day, event_ref=f"later-{day}") for day in (1, 2, 3)]

    seen = list(first["outcomes"])
    cursor = first["next_cursor"]
    while True:
        page = api.get("/api/v1/outcomes", {"limit": 2, "cursor": cursor}).json()
        seen += page["outcomes"]
        cursor = page["next_cursor"]
        if not page["has_more"]:
            break

    assert len(seen) == 6 and len({o["id"] for o in seen}) == 6
    assert [o["event_id"] for o in seen[3:]] == ["later-1", "later-2", "later-3"]
    assert [o["id"] for o in seen] == sorted(o["id"] for o in seen)
    assert partition_of(OUTCOMES, later[0].id) == partitions.partition_name(OUTCOMES, next_month)
    assert api.get("/api/v1/outcomes", {"cursor": cursor}).json()["outcomes"] == []


# Events and their notifications


@pytest.mark.django_db
def test_an_event_and_its_notifications_share_its_months_partition(linked, linked_api):
    post(linked_api, event_payload(account=linked.card, id="evt-here"))

    event = Event.objects.get(event_id="evt-here")
    (notification,) = Notification.objects.filter(event=event)

    month = Month(event.id >> MONTH_SHIFT)
    assert month == Month.of(event.received_at) or month == Month.of(timezone.now())
    assert Month(notification.id >> MONTH_SHIFT) == month
    assert partition_of(EVENTS, event.id) == partitions.partition_name(EVENTS, month)
    assert partition_of(NOTIFICATIONS, notification.id) == partitions.partition_name(
        NOTIFICATIONS, month
    )
    assert EventKey.objects.get(bank=linked.bank, reference="evt-here").event_id == event.id


@pytest.mark.django_db
def test_a_notification_takes_its_events_month_not_the_clocks(linked):
    next_month = Month.of(timezone.now()) + 1
    services.partitions_create_ahead(ahead=1)
    event = event_in(next_month, linked)

    (notification,) = notifications_written(linked, event)

    assert Month(notification.id >> MONTH_SHIFT) == next_month
    assert partition_of(NOTIFICATIONS, notification.id) == partitions.partition_name(
        NOTIFICATIONS, next_month
    )


@pytest.mark.django_db
def test_a_month_of_notifications_keeps_one_notification_per_event_and_link(linked):
    from django.db import IntegrityError, transaction

    this = Month.of(timezone.now())
    event = event_in(this, linked)
    (first,) = notifications_written(linked, event)

    with pytest.raises(IntegrityError, match="one_notification_per_link"), transaction.atomic():
        Notification.objects.create(
            id=(this.index << MONTH_SHIFT) + 10**9,
            bank=linked.bank,
            event=event,
            consent=first.consent,
            account=first.account,
            event_type=first.event_type,
            page_id=first.page_id,
            psid=first.psid,
            sequence=first.sequence + 1,
            locale="en",
        )
    assert Notification.objects.filter(event=event).count() == 1


@pytest.mark.django_db
def test_the_same_event_id_is_a_duplicate_whatever_month_it_was_stored_in(linked, linked_api):
    last_month = Month.of(timezone.now()) - 1
    months_made(last_month)
    stored = event_in(last_month, linked, event_id="evt-last-month")

    response = linked_api.post(
        "/api/v1/events",
        {"events": [event_payload(account=linked.card, id="evt-last-month")]},
        format="json",
    )

    (result,) = response.json()["results"]
    assert result["status"] == "duplicate"
    assert Event.objects.filter(event_id="evt-last-month").get().pk == stored.pk
    assert linked_api.get("/api/v1/events/evt-last-month").json()["status"] == "processed"


@pytest.mark.django_db
def test_two_months_notifications_of_one_person_are_never_in_flight_together(linked):
    from django.db import IntegrityError, transaction

    this = Month.of(timezone.now())
    services.partitions_create_ahead(ahead=1)
    (older,) = notifications_written(linked, event_in(this, linked))
    (newer,) = notifications_written(linked, event_in(this + 1, linked))
    assert Month(older.id >> MONTH_SHIFT) != Month(newer.id >> MONTH_SHIFT)

    Notification.objects.filter(pk=older.pk).update(state="in_flight", lease_owner="w1")
    with pytest.raises(IntegrityError), transaction.atomic():
        Notification.objects.filter(pk=newer.pk).update(state="in_flight", lease_owner="w2")

    assert InFlight.objects.get().notification_id == older.pk
    Notification.objects.filter(pk=older.pk).update(state="sent")
    Notification.objects.filter(pk=newer.pk).update(state="in_flight", lease_owner="w2")
    assert InFlight.objects.get().notification_id == newer.pk
    Notification.objects.filter(pk=newer.pk).delete()
    assert not InFlight.objects.exists()


@pytest.mark.django_db
def test_a_digests_originals_in_flight_together_are_not_held_by_the_rule(linked):
    this = Month.of(timezone.now())
    services.partitions_create_ahead(ahead=1)
    (lead,) = notifications_written(linked, event_in(this, linked))
    (member,) = notifications_written(linked, event_in(this + 1, linked))

    Notification.objects.filter(pk=lead.pk).update(state="in_flight")
    Notification.objects.filter(pk__in=[lead.pk, member.pk]).update(
        state="in_flight", digest=lead.pk
    )

    assert Notification.objects.filter(state="in_flight").count() == 2
    assert not InFlight.objects.exists()  # as the index, it counts rows without a digest


# Retention by partition


@pytest.mark.django_db
def test_the_horizon_is_the_longest_retention_plus_a_month_or_the_setting(settings):
    outcomes = partitioned.OUTCOMES
    RetentionPolicy.objects.create(bank=BankFactory(), months=30)
    assert keep_months(outcomes) == 31  # the bank's 30 months, and one more

    settings.NOTIFICATIONS_OUTCOMES_KEEP_MONTHS = 6
    assert keep_months(outcomes) == 31  # never less

    settings.NOTIFICATIONS_OUTCOMES_KEEP_MONTHS = 40
    assert keep_months(outcomes) == 40


def test_a_wrong_number_of_months_is_refused_at_start(monkeypatch):
    monkeypatch.setenv("NOTIFICATIONS_OUTCOMES_KEEP_MONTHS", "0")
    with pytest.raises(ImproperlyConfigured, match="NOTIFICATIONS_OUTCOMES_KEEP_MONTHS"):
        partition_months_from_env("NOTIFICATIONS_OUTCOMES_KEEP_MONTHS")
    monkeypatch.setenv("NOTIFICATIONS_OUTCOMES_KEEP_MONTHS", "twelve")
    with pytest.raises(ImproperlyConfigured):
        partition_months_from_env("NOTIFICATIONS_OUTCOMES_KEEP_MONTHS")
    monkeypatch.setenv("NOTIFICATIONS_OUTCOMES_KEEP_MONTHS", "18")
    assert partition_months_from_env("NOTIFICATIONS_OUTCOMES_KEEP_MONTHS") == 18
    monkeypatch.delenv("NOTIFICATIONS_OUTCOMES_KEEP_MONTHS")
    assert partition_months_from_env("NOTIFICATIONS_OUTCOMES_KEEP_MONTHS") is None


@pytest.mark.django_db(transaction=True)
def test_a_month_past_the_horizon_is_dropped_whole_and_newer_months_stay(
    old_partitions, linked, linked_api, graph
):
    now = timezone.now()
    expired, kept = Month.of(now) - 20, Month.of(now) - 5  # the horizon: 14 months
    old_partitions += [expired, kept]
    for month in (expired, kept):
        partitions.partitions_create(OUTCOMES, [month])
        partitions.partitions_create(ATTEMPTS, [month])
    gone = [outcome_in(expired, linked.bank, day=day) for day in (1, 28)]
    stays = outcome_in(kept, linked.bank)
    post(linked_api, event_payload(account=linked.card))
    services.deliveries_run(seconds=0)
    notification = Notification.objects.get()
    old_attempt = DeliveryAttempt.objects.create(
        id=partitions.month_id(ATTEMPTS, expired.start + timedelta(days=3)),
        notification=notification,
        number=9,
        started_at=expired.start + timedelta(days=3),
        outcome="sent",
    )

    dropped = services.partitions_drop_expired(now=now)

    assert {(d.table, d.month) for d in dropped} >= {
        (OUTCOMES, str(expired)),
        (ATTEMPTS, str(expired)),
    }
    assert str(expired) not in months_of(OUTCOMES) and str(expired) not in months_of(ATTEMPTS)
    assert str(kept) in months_of(OUTCOMES) and str(Month.of(now)) in months_of(OUTCOMES)
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s)", [partitions.partition_name(OUTCOMES, expired)])
        assert cursor.fetchone()[0] is None  # detached and dropped, not left beside
    assert not Outcome.objects.filter(id__in=[o.id for o in gone]).exists()
    assert Outcome.objects.filter(id=stays.id).exists()
    assert Outcome.objects.filter(notification=notification).exists()  # this month's
    assert not DeliveryAttempt.objects.filter(id=old_attempt.id).exists()
    assert DeliveryAttempt.objects.filter(notification=notification, number=1).exists()


@pytest.mark.django_db(transaction=True)
def test_a_month_of_events_goes_with_its_notifications_keys_and_answers(
    old_partitions, linked, linked_api, graph
):
    from conversation.models import FraudAlertAnswer
    from notifications.models import MessageEcho

    now = timezone.now()
    expired = Month.of(now) - 20
    old_partitions.append(expired)
    months_made(expired)
    old = event_in(expired, linked, event_id="evt-long-ago")
    (old_notification,) = notifications_written(linked, old)
    Notification.objects.filter(pk=old_notification.pk).update(state="sent")
    answer = FraudAlertAnswer.objects.create(
        bank=linked.bank,
        notification=old_notification,
        event=old,
        consent=linked.consent,
        answer="no",
    )
    echo = MessageEcho.objects.create(
        bank=linked.bank,
        page_id=linked.integration.page_id,
        recipient_ref="someone",
        mid="m_long_ago",
        source="bankside",
        outcome="confirmed",
        notification=old_notification,
        sent_at=now,
    )
    post(linked_api, event_payload(account=linked.card, id="evt-today"))

    dropped = services.partitions_drop_expired(now=now)

    assert [d.table for d in dropped if d.month == str(expired)] == [
        ATTEMPTS,
        OUTCOMES,
        NOTIFICATIONS,
        EVENTS,
    ]  # dependents first
    assert not Event.objects.filter(pk=old.pk).exists()
    assert not Notification.objects.filter(pk=old_notification.pk).exists()
    assert not EventKey.objects.filter(reference="evt-long-ago").exists()
    assert not FraudAlertAnswer.objects.filter(pk=answer.pk).exists()
    echo.refresh_from_db()
    assert echo.notification_id is None
    assert Event.objects.filter(event_id="evt-today").exists()  # this month's stay
    assert EventKey.objects.filter(reference="evt-today").exists()
    # Past its month, the id is free: posted again, it is a new event.
    again = linked_api.post(
        "/api/v1/events",
        {"events": [event_payload(account=linked.card, id="evt-long-ago")]},
        format="json",
    )
    assert again.json()["results"][0]["status"] == "accepted"


@pytest.mark.django_db
def test_events_and_notifications_keep_at_least_what_points_at_them(settings):
    RetentionPolicy.objects.create(bank=BankFactory(), months=12)
    settings.NOTIFICATIONS_OUTCOMES_KEEP_MONTHS = 30
    settings.NOTIFICATIONS_ATTEMPTS_KEEP_MONTHS = 20
    settings.NOTIFICATIONS_EVENTS_KEEP_MONTHS = 15

    assert keep_months(partitioned.EVENTS) == 30
    assert keep_months(partitioned.NOTIFICATIONS) == 30
    settings.NOTIFICATIONS_EVENTS_KEEP_MONTHS = 40
    assert keep_months(partitioned.EVENTS) == keep_months(partitioned.NOTIFICATIONS) == 40


@pytest.mark.django_db(transaction=True)
def test_a_dropped_month_is_audited_with_its_rows_and_bytes(old_partitions):
    now = timezone.now()
    expired = Month.of(now) - 30
    old_partitions.append(expired)
    partitions.partitions_create(OUTCOMES, [expired])
    bank = BankFactory()
    for day in (2, 3, 4):
        outcome_in(expired, bank, day=day)

    services.partitions_drop_expired(now=now)

    entry = AuditEvent.objects.get(
        action="partition.dropped", target_id=OUTCOMES, details__month=str(expired)
    )
    assert entry.bank is None and entry.actor_type == "system"
    assert entry.details["table"] == OUTCOMES
    assert entry.details["rows"] == 3
    assert entry.details["bytes"] > 0
    assert entry.details["keep_months"] == 14


@pytest.mark.django_db(transaction=True)
def test_a_month_inside_the_horizon_is_kept(old_partitions):
    now = timezone.now()
    kept = Month.of(now) - 14  # its last day is less than 14 months old
    old_partitions.append(kept)
    partitions.partitions_create(OUTCOMES, [kept])
    row = outcome_in(kept, BankFactory(), day=28)

    dropped = services.partitions_drop_expired(now=now)

    assert str(kept) not in {d.month for d in dropped}
    assert Outcome.objects.filter(id=row.id).exists()


@pytest.mark.django_db(transaction=True)
def test_the_legacy_partition_goes_only_once_its_newest_row_is_past_the_horizon():
    now = timezone.now()
    bank = BankFactory()
    legacy_partition(OUTCOMES)
    Outcome.objects.create(
        id=41, bank=bank, type="event.accepted", occurred_at=now - timedelta(days=800)
    )
    recent = Outcome.objects.create(id=42, bank=bank, type="event.accepted", occurred_at=now)

    services.partitions_drop_expired(now=now)
    assert "legacy" in months_of(OUTCOMES)

    Outcome.objects.filter(id=recent.id).update(occurred_at=now - timedelta(days=700))
    dropped = services.partitions_drop_expired(now=now)

    assert (OUTCOMES, "legacy") in {(d.table, d.month) for d in dropped}
    assert "legacy" not in months_of(OUTCOMES)
    assert not Outcome.objects.filter(id__in=[41, 42]).exists()


@pytest.mark.django_db(transaction=True)
def test_the_events_legacy_partition_waits_for_the_notifications_legacy_one(linked):
    now = timezone.now()
    for table in (EVENTS, NOTIFICATIONS):
        legacy_partition(table)
    long_ago = now - timedelta(days=800)
    EventFactory(
        id=41, bank=linked.bank, account=linked.card, received_at=long_ago, status="processed"
    )
    notification = Notification.objects.create(
        id=41,
        bank=linked.bank,
        event_id=41,
        consent=linked.consent,
        account=linked.card,
        event_type="transaction.posted",
        page_id=linked.integration.page_id,
        psid=linked.consent.psid,
        sequence=1,
        state="sent",
        locale="en",
    )

    first = services.partitions_drop_expired(now=now)

    assert (EVENTS, "legacy") not in {(d.table, d.month) for d in first}
    assert Event.objects.filter(pk=41).exists()  # its notification is still kept
    Notification.objects.filter(pk=notification.pk).update(created_at=long_ago)
    second = services.partitions_drop_expired(now=now)
    legacies = [d.table for d in second if d.month == "legacy"]
    assert legacies.index(NOTIFICATIONS) < legacies.index(EVENTS)
    assert not Event.objects.filter(pk=41).exists()
    assert not EventKey.objects.filter(event_id=41).exists()


@pytest.mark.django_db
def test_dropping_refuses_to_run_inside_a_transaction():
    with pytest.raises(RuntimeError, match="outside atomic"):
        services.partitions_drop_expired()


# Elsewhere than PostgreSQL


@pytest.mark.parametrize(
    "name",
    [
        "0016_outcomes_and_attempts_partitioned_by_month",
        "0017_events_and_notifications_partitioned_by_month",
    ],
)
def test_on_sqlite_the_tables_stay_plain(name):
    from importlib import import_module

    migration = import_module(f"notifications.migrations.{name}")
    sqlite = SQLiteWrapper(
        {
            **settings.DATABASES["default"],
            "NAME": ":memory:",
            "ENGINE": "django.db.backends.sqlite3",
        }
    )

    migration.partition(None, SimpleNamespace(connection=sqlite))

    assert not partitions.supported(sqlite)
    assert sqlite.connection is None  # never asked anything


# Where the application's role owns no table


@pytest.mark.django_db(transaction=True)
def test_a_role_owning_no_table_makes_and_drops_months_as_member_of_their_owner(
    old_partitions,
):
    """As in production (docker/postgres/10-bankside-roles.sh): the tables belong to a
    role the application's is a member of, and new months are that role's too."""
    suffix = uuid.uuid4().hex[:10]
    owner, app = f"bankside_partitions_{suffix}", f"bankside_app_{suffix}"
    now = timezone.now()
    expired, ahead = Month.of(now) - 30, Month.of(now) + 7
    old_partitions += [expired, ahead]
    tables = ALL  # as the migrations hand them over
    bank = BankFactory()
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE ROLE {owner} NOLOGIN")
        cursor.execute(f"CREATE ROLE {app} NOLOGIN")
        cursor.execute(f"GRANT ALL PRIVILEGES ON ALL TABLES IN SCHEMA public TO {app}")
        cursor.execute(f"GRANT ALL PRIVILEGES ON ALL SEQUENCES IN SCHEMA public TO {app}")
        cursor.execute(f"GRANT CREATE ON SCHEMA public TO {owner}")
        cursor.execute(f"GRANT {owner} TO {app}")
        assert partitions.tables_own(cursor, tables, role=owner)
    try:
        with connection.cursor() as cursor:
            cursor.execute(f"SET ROLE {app}")
        partitions.partitions_create(OUTCOMES, [expired, ahead])
        row = outcome_in(expired, bank)
        dropped = services.partitions_drop_expired(now=now)
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = to_regclass(%s)",
                [partitions.partition_name(OUTCOMES, ahead)],
            )
            assert cursor.fetchone()[0] == owner
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET ROLE")
            cursor.execute("SELECT current_user")
            (superuser,) = cursor.fetchone()
            partitions.tables_own(cursor, tables, role=superuser)
            for role in (app, owner):
                cursor.execute(f"DROP OWNED BY {role}")
                cursor.execute(f"DROP ROLE {role}")

    assert (OUTCOMES, str(expired)) in {(d.table, d.month) for d in dropped}
    assert not Outcome.objects.filter(id=row.id).exists()
    assert str(ahead) in months_of(OUTCOMES)
