from celery import shared_task

from portal import services


@shared_task(bind=True, name="portal.record_worker_heartbeat", ignore_result=True)
def record_worker_heartbeat(self) -> None:
    services.worker_heartbeat_record(hostname=self.request.hostname)
