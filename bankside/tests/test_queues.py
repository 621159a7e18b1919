"""The Celery queues: which work goes where, and that a worker told no queue, or the
demo's one worker, consumes every queue work is routed to (nothing is stranded)."""

from pathlib import Path

import pytest
from django.conf import settings

from bankside.celery import app, queue_names, route_task
from demo.management.commands.run_demo import Command as RunDemo

ROUTED = {
    "notifications.deliver_urgent": "bankside.urgent",
    "notifications.deliver_due": "bankside.routine",
    "notifications.sweep_outbox": "bankside.routine",
    "notifications.hand_back": "bankside.routine",
    "linking.unlink_in_messenger": "bankside.routine",
    "linking.sweep_platform_unlinks": "bankside.routine",
    "linking.send_expiry_reminder": "bankside.routine",
    "linking.sweep_link_messages": "bankside.routine",
    "notifications.answer_inbound": "bankside.conversation",
    "notifications.send_conversation_message": "bankside.conversation",
    "notifications.deliver_bank_callback": "bankside.conversation",
    "notifications.sweep_conversations": "bankside.conversation",
    "linking.send_link_confirmation": "bankside.conversation",
    "linking.send_new_link_notices": "bankside.conversation",
    "linking.send_link_message": "bankside.conversation",
    "linking.send_referral_refusal": "bankside.conversation",
    "portal.record_worker_heartbeat": "bankside",
    "portal.verify_audit_chains": "bankside",
    "portal.sign_audit_checkpoints": "bankside",
    "portal.purge_retained_data": "bankside",
    "notifications.purge_expired_api_records": "bankside",
    "notifications.create_partitions": "bankside",
    "notifications.drop_expired_partitions": "bankside",
    "linking.expire_consents": "bankside",
    "linking.remind_expiring_consents": "bankside",
    "linking.expire_unused_invitations": "bankside",
}


def our_tasks() -> set[str]:
    app.loader.import_default_modules()
    return {name for name in app.tasks if not name.startswith("celery.")}


def queue_of(task: str) -> str:
    """Where sending `task` puts its message: Celery's own routing, as `delay` uses it."""
    return app.amqp.router.route({}, task)["queue"].name


@pytest.mark.parametrize(("task", "queue"), sorted(ROUTED.items()))
def test_each_task_goes_to_its_queue(task, queue):
    assert queue_of(task) == queue


def test_every_task_has_a_place_in_the_table_above():
    assert our_tasks() == set(ROUTED)


def test_the_routes_name_only_tasks_that_exist():
    named = {task for tasks in settings.TASK_QUEUE_CLASSES.values() for task in tasks}
    assert named <= our_tasks()


def beat_queue(entry: dict) -> str:
    """Where beat sends `entry`: Celery's routing, with the entry's own options."""
    return app.amqp.router.route(dict(entry.get("options", {})), entry["task"])["queue"].name


def test_every_beat_task_exists_and_lands_on_a_queue_a_worker_consumes():
    consumed = set(app.amqp.queues.consume_from)
    for entry in settings.CELERY_BEAT_SCHEDULE.values():
        assert entry["task"] in our_tasks()
        assert beat_queue(entry) in consumed


def test_the_workers_of_every_queue_send_a_heartbeat():
    heartbeats = [
        beat_queue(entry)
        for entry in settings.CELERY_BEAT_SCHEDULE.values()
        if entry["task"] == "portal.record_worker_heartbeat"
    ]

    assert sorted(heartbeats) == sorted(app.amqp.queues)


def test_a_worker_given_no_queues_consumes_every_routed_queue():
    routed = {queue_of(task) for task in our_tasks()}

    assert routed == set(app.amqp.queues.consume_from)
    assert routed == {"bankside", "bankside.urgent", "bankside.routine", "bankside.conversation"}


def test_the_demos_one_worker_consumes_every_routed_queue():
    argv = RunDemo()._worker_argv(Path("/tmp"))
    consumed = set(argv[argv.index("--queues") + 1].split(","))

    assert {queue_of(task) for task in our_tasks()} <= consumed
    assert "--beat" in argv


def test_a_process_with_a_default_queue_of_its_own_gets_a_set_of_its_own(monkeypatch):
    """A benchmark gives its processes a default queue of their own: none of its work may
    reach another run's workers."""
    monkeypatch.setitem(app.conf, "task_default_queue", "bench-42")

    assert route_task("notifications.deliver_urgent", (), {}, {}) == {"queue": "bench-42.urgent"}
    assert route_task("notifications.answer_inbound", (), {}, {}) == {
        "queue": "bench-42.conversation"
    }
    assert route_task("portal.verify_audit_chains", (), {}, {}) is None  # the default queue
    assert queue_names("bench-42") == [
        "bench-42",
        "bench-42.urgent",
        "bench-42.routine",
        "bench-42.conversation",
    ]
