"""The Django admin as a read-only window for platform admins.

Every write that matters goes through an audited service and the staff pages; the admin
would be a way around both (a role changed there leaves no audit entry). So every model
the admin shows, the project's and every library's, is shown read-only: no adding,
changing, deleting or bulk actions, whatever the ModelAdmin registered says.
"""

from django.conf import settings
from django.contrib import admin
from django.contrib.auth.views import redirect_to_login
from django.shortcuts import resolve_url
from django.urls import reverse


class ReadOnlyAdminMixin:
    def has_add_permission(self, request, *args, **kwargs) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def get_actions(self, request):
        return {}


class PlatformAdminSite(admin.AdminSite):
    """Platform superusers only, signed in with their second factor, and read-only."""

    site_header = "bankside platform administration"

    def has_permission(self, request) -> bool:
        user = request.user
        verified = getattr(user, "is_verified", None)
        return bool(user.is_active and user.is_superuser and verified is not None and verified())

    def login(self, request, extra_context=None):
        """Sign in through the staff login, which asks platform admins for their TOTP code."""
        return redirect_to_login(
            request.GET.get("next") or reverse("admin:index"), resolve_url(settings.LOGIN_URL)
        )

    def register(self, model_or_iterable, admin_class=None, **options):
        admin_class = admin_class or admin.ModelAdmin
        if not issubclass(admin_class, ReadOnlyAdminMixin):
            admin_class = type(
                f"ReadOnly{admin_class.__name__}", (ReadOnlyAdminMixin, admin_class), {}
            )
        super().register(model_or_iterable, admin_class, **options)
