from django.contrib import admin
from django_otp.plugins.otp_totp.models import TOTPDevice

from portal.models import AuditEvent, Bank, StaffMembership, StaffTOTPDevice

# The Django admin is for platform superusers only, signed in with their second factor, and
# read-only (portal.admin_site); bank staff use the portal's own pages under /staff/.


@admin.register(Bank)
class BankAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "country", "timezone", "default_locale", "created_at")
    search_fields = ("name", "slug")


@admin.register(StaffMembership)
class StaffMembershipAdmin(admin.ModelAdmin):
    list_display = ("user", "bank", "role", "created_at")
    list_filter = ("role", "bank")


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ("occurred_at", "bank", "seq", "action", "actor_label", "target_type")
    list_filter = ("action", "bank")
    search_fields = ("action", "actor_label", "target_id", "request_id")


# Authenticators are listed without their seeds; django-otp's own TOTP table is no longer
# used (its devices moved to StaffTOTPDevice, encrypted), so its admin is not shown.
admin.site.unregister(TOTPDevice)


@admin.register(StaffTOTPDevice)
class StaffTOTPDeviceAdmin(admin.ModelAdmin):
    list_display = ("user", "name", "confirmed", "created_at", "last_used_at")
    list_filter = ("confirmed",)
    fields = ("user", "name", "confirmed", "created_at", "last_used_at", "drift", "last_t")
