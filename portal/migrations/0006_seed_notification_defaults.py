"""Give every existing bank the defaults a new bank gets: settings, policies, templates."""

from django.db import migrations

from portal.template_defaults import default_template_text

EVENT_TYPES = (
    "transaction.posted",
    "balance.updated",
    "fraud.alert",
    "receipt.issued",
    "shipment.updated",
)


def _locale(value):
    language, _, region = (value or "en").replace("-", "_").partition("_")
    if not region:
        return language.lower()
    return f"{language.lower()}_{region.upper() if len(region) <= 3 else region.title()}"


def seed(apps, schema_editor):
    Bank = apps.get_model("portal", "Bank")
    NotificationSettings = apps.get_model("portal", "NotificationSettings")
    NotificationPolicy = apps.get_model("portal", "NotificationPolicy")
    MessageTemplate = apps.get_model("portal", "MessageTemplate")
    for bank in Bank.objects.all():
        NotificationSettings.objects.get_or_create(bank=bank)
        locale = _locale(bank.default_locale)
        for event_type in EVENT_TYPES:
            NotificationPolicy.objects.get_or_create(bank=bank, event_type=event_type)
            MessageTemplate.objects.get_or_create(
                bank=bank,
                event_type=event_type,
                locale=locale,
                defaults={"body": default_template_text(event_type, locale)},
            )


class Migration(migrations.Migration):
    dependencies = [("portal", "0005_notification_policies_and_templates")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
