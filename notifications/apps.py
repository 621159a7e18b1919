from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "notifications"

    def ready(self) -> None:
        from notifications import receivers  # noqa: F401  (connects the signal receivers)
        from notifications.api import auth  # noqa: F401  (describes signed API keys in OpenAPI)
        from notifications.panels import recent_failures_panel
        from notifications.selectors import deliveries_panel
        from portal.dashboard import register_panel

        register_panel("notifications.deliveries", deliveries_panel)
        register_panel("notifications.recent_failures", recent_failures_panel)
