from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "notifications"

    def ready(self) -> None:
        from notifications.api import auth  # noqa: F401  (describes signed API keys in OpenAPI)
