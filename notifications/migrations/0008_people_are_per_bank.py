"""A person on a Page is one bank's: the bank joins the key of links, contacts and
conversations. Only the unique indexes change; every row stays (the new keys are wider)."""

from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('linking', '0006_people_are_per_bank'),
        ('notifications', '0007_conversation_card_number_warned'),
        ('portal', '0014_one_bank_per_page'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name='conversation',
            name='one_conversation_per_person',
        ),
        migrations.AddConstraint(
            model_name='conversation',
            constraint=models.UniqueConstraint(fields=('bank', 'page_id', 'psid'), name='one_conversation_per_person'),
        ),
    ]
