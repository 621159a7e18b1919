import logging

from django.db import transaction

log = logging.getLogger(__name__)


def deliveries_nudge(*, copies: int = 1) -> None:
    """After commit, ask a worker to deliver what is due (`delay_on_commit`, made robust).

    The broker message is only a nudge: the outbox rows are the truth and the beat
    sweeper re-enqueues anything due. So a broker that is down at commit time is logged,
    never raised into the request that has already committed its events.
    """

    def send() -> None:
        from notifications.tasks import deliver_due

        for _ in range(copies):
            try:
                deliver_due.apply_async(retry=False)
            except Exception:  # any broker failure: the sweeper catches up
                log.warning("delivery nudge not sent; the sweeper will catch up", exc_info=True)
                return

    transaction.on_commit(send, robust=True)
