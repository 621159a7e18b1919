"""Every notification policy's rules become version 1 of its history, approved by the
system, stored as `portal.services.notification_policy_body` writes them."""

import json
from decimal import Decimal

from django.db import migrations
from django.utils import timezone

FIELDS = (
    "enabled",
    "min_amount",
    "low_balance_below",
    "quiet_hours_start",
    "quiet_hours_end",
    "urgent",
)


def _stored(value):
    if value is None or isinstance(value, bool):
        return value
    if hasattr(value, "isoformat"):
        return value.isoformat(timespec="minutes")
    return str(value.quantize(Decimal("0.01")))


def first_versions(apps, schema_editor):
    NotificationPolicy = apps.get_model("portal", "NotificationPolicy")
    TextVersion = apps.get_model("portal", "TextVersion")
    now = timezone.now()
    TextVersion.objects.bulk_create(
        [
            TextVersion(
                bank_id=policy.bank_id,
                subject="notification_policy",
                key=policy.event_type,
                number=1,
                body=json.dumps({f: _stored(getattr(policy, f)) for f in FIELDS}, indent=1),
                state="approved",
                author_label="system",
                reviewer_label="system",
                reviewed_at=now,
                live_from=policy.updated_at or now,
            )
            for policy in NotificationPolicy.objects.all().iterator()
        ],
        batch_size=500,
    )


def forget_versions(apps, schema_editor):
    apps.get_model("portal", "TextVersion").objects.filter(subject="notification_policy").delete()


class Migration(migrations.Migration):
    dependencies = [("portal", "0027_message_template_first_versions")]

    operations = [migrations.RunPython(first_versions, forget_versions)]
