from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class PlatformAdminConfig(admin_apps.AdminConfig):
    """django.contrib.admin with the portal's read-only site (portal.admin_site)."""

    default = False
    default_site = "portal.admin_site.PlatformAdminSite"


class PortalConfig(AppConfig):
    name = "portal"

    def ready(self) -> None:
        from core.api.keys import api_keys_register
        from portal import checks  # noqa: F401  (registers the tenancy system check)
        from portal.api_callers import PortalApiKeys, kept_callers_forgotten_on_change
        from portal.dashboard import TILE, register_panel
        from portal.selectors import audit_integrity_panel

        register_panel(
            "portal.audit_integrity",
            audit_integrity_panel,
            title="Audit log integrity",
            size=TILE,
            order=5,
            roles=("admin", "auditor"),
            empty="Not checked yet: the audit log is verified every day.",
        )
        api_keys_register(PortalApiKeys())
        kept_callers_forgotten_on_change()
