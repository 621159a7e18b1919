"""Periodic housekeeping of the core-banking API."""

from celery import shared_task

from notifications import services


@shared_task(name="notifications.purge_expired_api_records", ignore_result=True)
def purge_expired_api_records() -> tuple[int, int]:
    return services.api_records_purge()
