from django.apps import AppConfig


class CoreConfig(AppConfig):
    """What every app may use and that knows no bank rule; it has no models."""

    name = "core"

    def ready(self) -> None:
        from core.api import auth  # noqa: F401  (describes API-key auth in OpenAPI)
        from core.db.lookups import lookups_register

        lookups_register()
