"""Thin Celery tasks: the outbox rows in PostgreSQL are the truth, a task is only a nudge.

Every task here is safe to run twice, or in several workers at once.
"""

from celery import shared_task
from django.conf import settings

from notifications import services


@shared_task(name="notifications.deliver_due", ignore_result=True)
def deliver_due() -> int:
    """Send what is due, batch after batch, for up to `NOTIFICATIONS_TASK_SECONDS`.

    If the last batch was full there is more to do: the task enqueues itself again
    rather than hold the worker, so other tasks get their turn.
    """
    services.deliveries_nudge_taken(urgent=False)
    report = services.deliveries_run()
    if report.more_due:
        deliver_due.delay()
    return report.claimed


@shared_task(name="notifications.deliver_urgent", ignore_result=True)  # type: ignore[untyped-decorator]
def deliver_urgent() -> int:
    """`deliver_due` for urgent notifications only: the urgent queue's task, so that a
    fraud alert never waits behind a routine backlog, not even for a free worker.

    Routine workers still take urgent notifications first whenever they claim, and the
    sweeper nudges both queues, so nothing urgent waits while the urgent workers are down.
    """
    services.deliveries_nudge_taken(urgent=True)
    report = services.deliveries_run(urgent_only=True)
    if report.more_due:
        deliver_urgent.delay()
    return report.claimed


@shared_task(name="notifications.sweep_outbox", ignore_result=True)
def sweep_outbox() -> int:
    """Beat, every few seconds: take over dead workers' claims and nudge delivery (the
    urgent queue too while urgent notifications are due).

    Whatever the broker lost (Redis restarted or flushed) is found here, from the rows.
    A large backlog gets two nudges, so that two worker processes drain it together.
    """
    report = services.outbox_sweep()
    if report.due or report.taken_over:
        nudges = 2 if report.due > settings.NOTIFICATIONS_CLAIM_BATCH else 1
        for _ in range(nudges):
            deliver_due.delay()
    if report.urgent_due:
        deliver_urgent.delay()
    return report.due


@shared_task(name="notifications.create_partitions", ignore_result=True)  # type: ignore[untyped-decorator]
def create_partitions() -> int:
    """Beat, hourly: the month partitions of the events, notifications, outcome feed and
    delivery attempts exist for this month and the next `NOTIFICATIONS_PARTITIONS_AHEAD`
    (idempotent)."""
    return sum(map(len, services.partitions_create_ahead().values()))


@shared_task(name="notifications.drop_expired_partitions", ignore_result=True)  # type: ignore[untyped-decorator]
def drop_expired_partitions() -> int:
    """Beat, daily: drop the months of those tables past their horizon, audited."""
    return len(services.partitions_drop_expired())


@shared_task(name="notifications.hand_back", ignore_result=True)
def hand_back() -> int:
    """Beat, every few seconds, and a nudge when an urgent update cannot be carried: hand
    back to the bank what Messenger cannot carry (`services.hand_back`)."""
    return services.hand_backs_run().total
