"""A person on a Page is one bank's: the bank joins the key of links, contacts and
conversations. Only the unique indexes change; every row stays (the new keys are wider)."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('linking', '0005_linking_token_use'),
        ('portal', '0014_one_bank_per_page'),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name='consent',
            name='one_active_link_per_person',
        ),
        migrations.RemoveConstraint(
            model_name='contact',
            name='one_contact_per_person',
        ),
        migrations.AddConstraint(
            model_name='consent',
            constraint=models.UniqueConstraint(condition=models.Q(('status', 'authorised'), models.Q(('psid', ''), _negated=True)), fields=('bank', 'page_id', 'psid'), name='one_active_link_per_person'),
        ),
        migrations.AddConstraint(
            model_name='contact',
            constraint=models.UniqueConstraint(fields=('bank', 'page_id', 'psid'), name='one_contact_per_person'),
        ),
    ]
