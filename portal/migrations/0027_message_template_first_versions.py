"""Every live message template becomes version 1 of its history, approved by the system."""

from django.db import migrations
from django.utils import timezone


def first_versions(apps, schema_editor):
    MessageTemplate = apps.get_model("portal", "MessageTemplate")
    TextVersion = apps.get_model("portal", "TextVersion")
    now = timezone.now()
    TextVersion.objects.bulk_create(
        [
            TextVersion(
                bank_id=template.bank_id,
                subject="message_template",
                key=f"{template.event_type}:{template.locale}",
                number=1,
                body=template.body,
                state="approved",
                author_label="system",
                reviewer_label="system",
                reviewed_at=now,
                live_from=template.updated_at or now,
            )
            for template in MessageTemplate.objects.all().iterator()
        ],
        batch_size=500,
    )


def forget_versions(apps, schema_editor):
    apps.get_model("portal", "TextVersion").objects.filter(subject="message_template").delete()


class Migration(migrations.Migration):
    dependencies = [("portal", "0026_text_versions")]

    operations = [migrations.RunPython(first_versions, forget_versions)]
