from django.apps import AppConfig


class PortalConfig(AppConfig):
    name = "portal"

    def ready(self) -> None:
        from portal import checks  # noqa: F401  (registers the tenancy system check)
        from portal.api import schema  # noqa: F401  (describes API-key auth in OpenAPI)
