"""The conversation's models, until now in `notifications`, adopted with their tables.

State only: the tables, rows, indexes and constraints stay exactly as notifications
migrations 0004-0008 made them (`db_table` keeps their names); notifications 0009 drops
the models from its own state.
"""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('linking', '0006_people_are_per_bank'),
        ('notifications', '0008_people_are_per_bank'),
        ('portal', '0014_one_bank_per_page'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.CreateModel(
                    name='BankCallback',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('type', models.CharField(max_length=64)),
                        ('webhook_id', models.CharField(max_length=64, unique=True)),
                        ('body', models.TextField()),
                        ('url', models.URLField(blank=True, max_length=500)),
                        ('state', models.CharField(choices=[('pending', 'Waiting'), ('delivering', 'Delivering'), ('delivered', 'Delivered'), ('dead', 'Gave up'), ('not_configured', 'No callback URL')], default='pending', max_length=16)),
                        ('attempts', models.PositiveIntegerField(default=0)),
                        ('next_attempt_at', models.DateTimeField(blank=True, null=True)),
                        ('lease_expires_at', models.DateTimeField(blank=True, null=True)),
                        ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                        ('delivered_at', models.DateTimeField(blank=True, null=True)),
                        ('bank', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='callbacks', to='portal.bank')),
                    ],
                    options={
                        'db_table': 'notifications_bankcallback',
                        'ordering': ['-created_at', '-id'],
                    },
                ),
                migrations.CreateModel(
                    name='BankCallbackAttempt',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('number', models.PositiveIntegerField()),
                        ('started_at', models.DateTimeField()),
                        ('latency_ms', models.PositiveIntegerField(blank=True, null=True)),
                        ('status_code', models.PositiveSmallIntegerField(blank=True, null=True)),
                        ('error', models.CharField(blank=True, max_length=300)),
                        ('callback', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='tries', to='conversation.bankcallback')),
                    ],
                    options={
                        'db_table': 'notifications_bankcallbackattempt',
                        'ordering': ['id'],
                    },
                ),
                migrations.CreateModel(
                    name='Conversation',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('page_id', models.CharField(max_length=32)),
                        ('psid', models.CharField(max_length=32)),
                        ('needs_person', models.BooleanField(default=False)),
                        ('reason', models.CharField(blank=True, choices=[('asked_for_person', 'Asked for a person'), ('not_understood', 'Not understood'), ('fraud_denied', 'Denied a card payment')], max_length=20)),
                        ('last_inbound_at', models.DateTimeField(blank=True, null=True)),
                        ('updated_at', models.DateTimeField(default=django.utils.timezone.now)),
                        ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                        ('resolved_at', models.DateTimeField(blank=True, null=True)),
                        ('card_number_warned_at', models.DateTimeField(blank=True, null=True)),
                        ('assigned_to', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                        ('bank', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='conversations', to='portal.bank')),
                        ('consent', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='conversations', to='linking.consent')),
                        ('customer', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='conversations', to='linking.customer')),
                    ],
                    options={
                        'db_table': 'notifications_conversation',
                        'ordering': ['-updated_at', '-id'],
                    },
                ),
                migrations.CreateModel(
                    name='ConversationMessage',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('direction', models.CharField(choices=[('in', 'From the customer'), ('out', 'From the bank')], max_length=3)),
                        ('author', models.CharField(choices=[('customer', 'Customer'), ('assistant', 'Automatic answer'), ('agent', 'Bank staff')], max_length=10)),
                        ('mid', models.CharField(blank=True, max_length=128)),
                        ('text', models.TextField(blank=True)),
                        ('quick_reply_payload', models.CharField(blank=True, max_length=1000)),
                        ('intent', models.CharField(blank=True, max_length=24)),
                        ('payload', models.JSONField(blank=True, null=True)),
                        ('form', models.CharField(blank=True, max_length=16)),
                        ('data_categories', models.JSONField(blank=True, default=list)),
                        ('state', models.CharField(choices=[('received', 'Received'), ('pending', 'Waiting to be sent'), ('sending', 'Sending'), ('sent', 'Sent'), ('failed', 'Not sent')], max_length=10)),
                        ('detail', models.CharField(blank=True, max_length=300)),
                        ('attempts', models.PositiveIntegerField(default=0)),
                        ('next_attempt_at', models.DateTimeField(blank=True, null=True)),
                        ('lease_expires_at', models.DateTimeField(blank=True, null=True)),
                        ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                        ('sent_at', models.DateTimeField(blank=True, null=True)),
                        ('bank', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='conversation_messages', to='portal.bank')),
                        ('conversation', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='messages', to='conversation.conversation')),
                        ('sent_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                    ],
                    options={
                        'db_table': 'notifications_conversationmessage',
                        'ordering': ['created_at', 'id'],
                    },
                ),
                migrations.CreateModel(
                    name='ConversationText',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('kind', models.CharField(choices=[('fraud_denied', "After “No, it wasn't me”")], max_length=24)),
                        ('locale', models.CharField(max_length=10)),
                        ('body', models.TextField()),
                        ('updated_at', models.DateTimeField(auto_now=True)),
                        ('bank', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='conversation_texts', to='portal.bank')),
                    ],
                    options={
                        'db_table': 'notifications_conversationtext',
                        'ordering': ['kind', 'locale'],
                    },
                ),
                migrations.CreateModel(
                    name='FraudAlertAnswer',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('answer', models.CharField(choices=[('confirmed', 'Yes, it was me'), ('denied', "No, it wasn't me")], max_length=10)),
                        ('answered_at', models.DateTimeField(default=django.utils.timezone.now)),
                        ('bank', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='fraud_answers', to='portal.bank')),
                        ('consent', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='linking.consent')),
                        ('event', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='notifications.event')),
                        ('notification', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, related_name='fraud_answer', to='notifications.notification')),
                    ],
                    options={
                        'db_table': 'notifications_fraudalertanswer',
                        'ordering': ['-answered_at', '-id'],
                    },
                ),
                migrations.AddField(
                    model_name='bankcallback',
                    name='fraud_answer',
                    field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='callbacks', to='conversation.fraudalertanswer'),
                ),
                migrations.AddIndex(
                    model_name='conversation',
                    index=models.Index(condition=models.Q(('needs_person', True)), fields=['bank', '-updated_at'], name='conversation_inbox'),
                ),
                migrations.AddConstraint(
                    model_name='conversation',
                    constraint=models.UniqueConstraint(fields=('bank', 'page_id', 'psid'), name='one_conversation_per_person'),
                ),
                migrations.AddIndex(
                    model_name='conversationmessage',
                    index=models.Index(condition=models.Q(('state__in', ['pending', 'sending'])), fields=['next_attempt_at'], name='conversation_message_due'),
                ),
                migrations.AddIndex(
                    model_name='conversationmessage',
                    index=models.Index(fields=['bank', 'created_at'], name='conversation_message_age'),
                ),
                migrations.AddIndex(
                    model_name='conversationmessage',
                    index=models.Index(condition=models.Q(('direction', 'in'), ('intent', '')), fields=['created_at'], name='conversation_unanswered'),
                ),
                migrations.AddConstraint(
                    model_name='conversationmessage',
                    constraint=models.UniqueConstraint(condition=models.Q(('direction', 'in'), models.Q(('mid', ''), _negated=True)), fields=('bank', 'mid'), name='one_inbound_message_per_mid'),
                ),
                migrations.AddConstraint(
                    model_name='conversationtext',
                    constraint=models.UniqueConstraint(fields=('bank', 'kind', 'locale'), name='one_conversation_text_per_locale'),
                ),
                migrations.AddIndex(
                    model_name='bankcallback',
                    index=models.Index(condition=models.Q(('state__in', ['pending', 'delivering'])), fields=['next_attempt_at'], name='callback_due'),
                ),
            ],
        ),
    ]
