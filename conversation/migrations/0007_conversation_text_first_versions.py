"""Every live conversation text becomes version 1 of its history, approved by the system."""

from django.db import migrations
from django.utils import timezone


def first_versions(apps, schema_editor):
    ConversationText = apps.get_model("conversation", "ConversationText")
    TextVersion = apps.get_model("portal", "TextVersion")
    now = timezone.now()
    TextVersion.objects.bulk_create(
        [
            TextVersion(
                bank_id=text.bank_id,
                subject="conversation_text",
                key=f"{text.kind}:{text.locale}",
                number=1,
                body=text.body,
                state="approved",
                author_label="system",
                reviewer_label="system",
                reviewed_at=now,
                live_from=text.updated_at or now,
            )
            for text in ConversationText.objects.all().iterator()
        ],
        batch_size=500,
    )


def forget_versions(apps, schema_editor):
    apps.get_model("portal", "TextVersion").objects.filter(subject="conversation_text").delete()


class Migration(migrations.Migration):
    dependencies = [
        ("conversation", "0006_card_number_warned_for"),
        ("portal", "0026_text_versions"),
    ]

    operations = [migrations.RunPython(first_versions, forget_versions)]
