"""A bank can mark an event type's notifications urgent (fraud alerts always are)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("portal", "0015_api_key_settings_and_records_from_notifications"),
    ]

    operations = [
        migrations.AddField(
            model_name="notificationpolicy",
            name="urgent",
            field=models.BooleanField(
                default=False,
                help_text="Urgent notifications go out before routine ones, even when a large "
                "backlog of routine updates is waiting. Fraud alerts are always urgent.",
                verbose_name="Urgent",
            ),
        ),
    ]
