from django.conf import settings
from django.contrib import admin
from django.contrib.auth.views import redirect_to_login
from django.shortcuts import resolve_url
from django.urls import reverse

from portal.models import AuditEvent, Bank, StaffMembership


def _platform_admin_signed_in(request) -> bool:
    user = request.user
    verified = getattr(user, "is_verified", None)
    return bool(user.is_active and user.is_superuser and verified is not None and verified())


def _admin_login(request, extra_context=None):
    """Sign in through the staff login, which asks platform admins for their TOTP code."""
    return redirect_to_login(
        request.GET.get("next") or reverse("admin:index"), resolve_url(settings.LOGIN_URL)
    )


# The Django admin is for platform superusers only, signed in with their second factor;
# bank staff use the portal's own pages under /staff/.
admin.site.site_header = "bankside platform administration"
admin.site.has_permission = _platform_admin_signed_in
admin.site.login = _admin_login


@admin.register(Bank)
class BankAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "timezone", "default_locale", "created_at")
    search_fields = ("name", "slug")
    readonly_fields = ("created_at", "updated_at")


@admin.register(StaffMembership)
class StaffMembershipAdmin(admin.ModelAdmin):
    list_display = ("user", "bank", "role", "created_at")
    list_filter = ("role", "bank")


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ("occurred_at", "bank", "seq", "action", "actor_label", "target_type")
    list_filter = ("action", "bank")
    search_fields = ("action", "actor_label", "target_id", "request_id")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
