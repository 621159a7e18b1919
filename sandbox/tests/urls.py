from django.urls import path

from bankside.urls import urlpatterns as project_urls
from sandbox.tests import bank_stub

urlpatterns = [
    path("test-bank/webhook", bank_stub.webhook),
    path("test-bank/login", bank_stub.login),
    *project_urls,
]
