from django.apps import AppConfig


class ConversationConfig(AppConfig):
    name = "conversation"

    def ready(self) -> None:
        from conversation import privacy, receivers, tasks  # noqa: F401  (signals, Celery)
        from conversation.selectors import fraud_answers_panel, inbox_panel
        from conversation.services.inbound import link_message_preface
        from linking.sections import register_link_section
        from linking.services.link_messages import register_link_message_preface
        from linking.subject_data import register_subject_data
        from portal.dashboard import TILE, register_panel
        from portal.navigation import register_nav
        from portal.retention import register_purger

        register_panel(
            "conversation.fraud_answers",
            fraud_answers_panel,
            title="Fraud answers",
            size=TILE,
            order=12,
            empty="No customer has answered a fraud alert in the last 30 days.",
        )

        register_panel(
            "conversation.inbox",
            inbox_panel,
            title="Agent inbox",
            size=TILE,
            order=11,
            empty="Nobody is waiting for a person in the agent inbox.",
        )

        register_link_message_preface("conversation.disclosure", link_message_preface)
        register_nav(
            "notifications.inbox",
            "Agent inbox",
            "conversation:inbox",
            roles=("admin", "operator", "auditor"),
            current=(
                "conversation:inbox_thread",
                "conversation:inbox_settings",
                "conversation:canned_reply_edit",
            ),
            order=40,
        )
        register_nav(
            "notifications.fraud_answers",
            "Fraud answers",
            "conversation:fraud_answers",
            roles=("admin", "operator", "auditor"),
            current=("conversation:conversation_texts",),
            order=45,
        )
        # The keys name the part in subject-access documents and retention audit entries,
        # so they stay as they were before the conversation became an app of its own.
        register_subject_data(
            "notifications.conversation",
            export=privacy.customer_export,
            erase=privacy.customer_erase,
        )
        register_purger("notifications.conversation", privacy.purge)
        register_link_section(
            "notifications.conversation",
            "Messages and replies",
            privacy.link_section,
            order=60,
            empty="The customer has not written to the bank under this link.",
        )
