"""The conversation's models leave notifications for the `conversation` app.

State only: conversation 0001 adopted the tables with their rows; nothing is dropped.
"""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('notifications', '0009_api_key_settings_and_records_to_portal'),
        ('conversation', '0001_initial'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.DeleteModel(name='BankCallbackAttempt'),
                migrations.DeleteModel(name='BankCallback'),
                migrations.DeleteModel(name='FraudAlertAnswer'),
                migrations.DeleteModel(name='ConversationMessage'),
                migrations.DeleteModel(name='Conversation'),
                migrations.DeleteModel(name='ConversationText'),
            ],
        ),
    ]
