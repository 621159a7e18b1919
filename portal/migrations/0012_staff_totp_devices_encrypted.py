"""Move every authenticator from django-otp's TOTP table, whose seeds are in clear, to
StaffTOTPDevice, whose seeds are encrypted with FIELD_ENCRYPTION_KEYS.

Each device keeps its owner, name, confirmed state, drift, last verified time step and
throttling, so codes keep working and a used code is still refused. The clear rows are
deleted. Staff signed in with a device keep their session but are asked for a code again,
since the session names the old table's device.
"""

from django.db import migrations

COPIED = (
    "user_id",
    "name",
    "confirmed",
    "throttling_failure_timestamp",
    "throttling_failure_count",
    "created_at",
    "last_used_at",
    "key",
    "step",
    "t0",
    "digits",
    "tolerance",
    "drift",
    "last_t",
)


def _move(source, target):
    for device in source.objects.order_by("pk").iterator():
        moved = target.objects.create(**{name: getattr(device, name) for name in COPIED})
        # `created_at` is filled in on creation: give the device its own back.
        target.objects.filter(pk=moved.pk).update(created_at=device.created_at)
    source.objects.all().delete()


def encrypt_devices(apps, schema_editor):
    _move(apps.get_model("otp_totp", "TOTPDevice"), apps.get_model("portal", "StaffTOTPDevice"))


def decrypt_devices(apps, schema_editor):
    _move(apps.get_model("portal", "StaffTOTPDevice"), apps.get_model("otp_totp", "TOTPDevice"))


class Migration(migrations.Migration):
    dependencies = [
        ("portal", "0011_staff_totp_device"),
        ("otp_totp", "0003_add_timestamps"),
    ]

    operations = [migrations.RunPython(encrypt_devices, decrypt_devices)]
