"""Every notification gets a class, urgent or routine, and the claim its indexes.

Rows already written take the class they would have had: fraud alerts urgent, everything
else routine (no bank had marked another type urgent yet). The column comes with its
default, so only fraud alerts are rewritten, a range of ids at a time; the indexes are
built after, over the final values.
"""

from django.db import migrations, models
from django.db.models import Max

BATCH = 10_000


def fraud_alerts_urgent(apps, schema_editor):
    Notification = apps.get_model("notifications", "Notification")
    top = Notification.objects.aggregate(top=Max("id"))["top"] or 0
    for start in range(0, top, BATCH):
        Notification.objects.filter(
            id__gt=start, id__lte=start + BATCH, event_type="fraud.alert"
        ).update(urgency="urgent")


class Migration(migrations.Migration):
    dependencies = [
        ("notifications", "0010_conversation_moves_to_its_own_app"),
    ]

    operations = [
        migrations.AddField(
            model_name="notification",
            name="urgency",
            field=models.CharField(
                choices=[("urgent", "Urgent"), ("routine", "Routine")],
                default="routine",
                max_length=8,
            ),
        ),
        migrations.RunPython(fraud_alerts_urgent, migrations.RunPython.noop),
        migrations.AddIndex(
            model_name="notification",
            index=models.Index(
                condition=models.Q(("state", "pending"), ("urgency", "urgent"), ("waiting", False)),
                fields=["next_attempt_at", "id"],
                name="notification_due_urgent",
            ),
        ),
        migrations.AddIndex(
            model_name="notification",
            index=models.Index(
                condition=models.Q(("urgency", "urgent"), ("waiting", True)),
                fields=["page_id", "psid", "sequence"],
                name="notification_waiting_urgent",
            ),
        ),
    ]
