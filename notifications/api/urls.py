from django.urls import path

from notifications.api.views import EventDetailApi, EventIngestApi, OutcomeListApi

app_name = "notifications-api"

urlpatterns = [
    path("events", EventIngestApi.as_view(), name="event-ingest"),
    path("events/<path:event_id>", EventDetailApi.as_view(), name="event-detail"),
    path("outcomes", OutcomeListApi.as_view(), name="outcome-list"),
]
