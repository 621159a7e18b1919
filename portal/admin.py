from django.contrib import admin

from portal.models import AuditEvent, Bank, StaffMembership

# The Django admin is for platform superusers only; bank staff use the portal's own pages.
admin.site.site_header = "bankside platform administration"
admin.site.has_permission = lambda request: bool(
    request.user.is_active and request.user.is_superuser
)


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
