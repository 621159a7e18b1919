from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from linking.webhooks import messenger_webhook
from notifications.metrics import metrics_endpoint
from portal import views as portal_views

urlpatterns = [
    path("health/live", portal_views.health_live, name="health-live"),
    path("health/ready", portal_views.health_ready, name="health-ready"),
    path("metrics", metrics_endpoint, name="metrics"),
    path("platform-admin/", admin.site.urls),
    path("webhooks/messenger/<slug:bank>/", messenger_webhook, name="messenger-webhook"),
    path("api/v1/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # Swagger UI with its set-up script served apart (`?script`): no inline script or style.
    path(
        "api/v1/docs/",
        SpectacularSwaggerSplitView.as_view(
            url_name="api-schema", template_name="bankside/api_docs.html"
        ),
        name="api-docs",
    ),
    path("api/v1/", include("linking.api.urls")),
    path("api/v1/", include("notifications.api.urls")),
    path("", include("conversation.urls")),
    path("", include("notifications.staff_urls")),
    path("", include("linking.urls")),
    path("", include("portal.urls")),
]

handler404 = "core.api.problems.page_not_found"

if settings.SANDBOX_ENABLED:
    urlpatterns.insert(0, path("sandbox/", include("sandbox.urls")))
