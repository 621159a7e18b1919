"""The Celery app, and the queues its work is split into.

Four queues, so that each kind of work gets workers of its own and none waits behind
another's backlog (README "Scaling out"):

- `<default>.urgent`: sending urgent notifications (fraud alerts), and nothing else;
- `<default>.routine`: the rest of notification delivery, its sweeps, the hand-back and
  the link lifecycle's calls to the platform;
- `<default>.conversation`: what a person in a chat waits for (answers, staff replies,
  link confirmations) and the callbacks to the bank;
- `<default>`: beat's housekeeping (heartbeats, expiries, purges, audit checks).

`<default>` is `task_default_queue` (`CELERY_TASK_DEFAULT_QUEUE`, "bankside"): a process
given a default queue of its own (a benchmark's) gets a whole set of its own. Which task
goes where is `TASK_QUEUE_CLASSES` in the settings. A worker told no queues (`-Q`)
consumes all four, so one worker process still does everything (the demo, the tests).
"""

import os
from typing import Any

from celery import Celery
from celery.app.amqp import AMQP
from kombu.utils.objects import cached_property

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bankside.settings.local")

QUEUE_CLASSES = ("urgent", "routine", "conversation")


def queue_name(default: str, queue_class: str | None) -> str:
    """The queue of `queue_class` (None: the default queue itself)."""
    return default if queue_class is None else f"{default}.{queue_class}"


def queue_names(default: str) -> list[str]:
    """Every queue work is routed to, the default one first."""
    return [default, *(queue_name(default, queue_class) for queue_class in QUEUE_CLASSES)]


def task_queue_class(name: str) -> str | None:
    """The class of queue the task `name` goes to (None: the default queue)."""
    from django.conf import settings

    for queue_class, tasks in settings.TASK_QUEUE_CLASSES.items():
        if name in tasks:
            return queue_class
    return None


def route_task(
    name: str, args: Any, kwargs: Any, options: Any, task: Any = None, **kw: Any
) -> dict[str, str] | None:
    """Celery's router (`CELERY_TASK_ROUTES`): the task's queue, from its class."""
    queue_class = task_queue_class(name)
    if queue_class is None:
        return None
    return {"queue": queue_name(app.conf.task_default_queue, queue_class)}


class AllQueuesAMQP(AMQP):  # type: ignore[misc]  # Celery has no types
    """Without `task_queues` set, every queue of `queue_names` (not only the default one),
    so that a worker given no `-Q` consumes them all; read when first needed, so a
    default queue set after the settings were read (a benchmark's) counts."""

    @cached_property
    def queues(self) -> Any:
        conf = self.app.conf
        if conf.task_queues:
            return self.Queues(conf.task_queues)
        queues = self.Queues(None)
        for name in queue_names(conf.task_default_queue)[1:]:
            queues.select_add(name)  # consumed too when no -Q is given
        return queues


app = Celery("bankside", amqp=AllQueuesAMQP)
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
