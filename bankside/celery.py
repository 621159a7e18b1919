import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bankside.settings.local")

app = Celery("bankside")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
