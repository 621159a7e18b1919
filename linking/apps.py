from django.apps import AppConfig


class LinkingConfig(AppConfig):
    name = "linking"

    def ready(self) -> None:
        from linking import receivers  # noqa: F401  (connects the signal receivers)
