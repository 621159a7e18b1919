from celery import shared_task

from portal import services
from portal.services.api_records import api_records_purge


@shared_task(bind=True, name="portal.record_worker_heartbeat", ignore_result=True)
def record_worker_heartbeat(self) -> None:
    services.worker_heartbeat_record(hostname=self.request.hostname)


@shared_task(name="portal.verify_audit_chains", ignore_result=True)
def verify_audit_chains() -> None:
    from portal.audit import Actor
    from portal.models import AuditIntegrityCheck

    services.audit_integrity_check(
        actor=Actor.system("daily integrity check"), trigger=AuditIntegrityCheck.Trigger.SCHEDULED
    )


@shared_task(name="portal.sign_audit_checkpoints", ignore_result=True)
def sign_audit_checkpoints() -> None:
    from portal.audit import Actor

    services.audit_checkpoint_sign(actor=Actor.system("daily checkpoint"))


@shared_task(name="portal.purge_retained_data", ignore_result=True)
def purge_retained_data() -> None:
    """Daily: blank each bank's message bodies and event data past its retention period."""
    from portal.audit import Actor

    services.retention_purge_all(actor=Actor.system("daily retention purge"))


# Named as when notifications held it, so that beat's schedule and queued runs still find it.
@shared_task(name="notifications.purge_expired_api_records", ignore_result=True)
def purge_expired_api_records() -> tuple[int, int]:
    return api_records_purge()
