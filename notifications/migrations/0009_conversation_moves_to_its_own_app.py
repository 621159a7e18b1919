"""The conversation's models leave notifications for the `conversation` app.

State only: conversation 0001 adopted the tables with their rows; nothing is dropped.
"""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('notifications', '0008_people_are_per_bank'),
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
