from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "notifications"

    def ready(self) -> None:
        from notifications import receivers  # noqa: F401  (connects the signal receivers)
        from notifications.panels import recent_failures_panel
        from notifications.selectors import deliveries_panel
        from portal.dashboard import register_panel

        register_panel("notifications.deliveries", deliveries_panel)
        _register_dead_letters()
        _register_privacy()
        register_panel("notifications.recent_failures", recent_failures_panel)
        _register_conversation()


def _register_conversation() -> None:
    from linking.sections import register_link_section
    from linking.subject_data import register_subject_data
    from notifications.conversation import privacy, receivers, tasks  # noqa: F401  (signals, Celery)
    from portal.navigation import register_nav
    from portal.retention import register_purger

    register_nav(
        "notifications.inbox",
        "Agent inbox",
        "conversation:inbox",
        roles=("admin", "operator", "auditor"),
        current=("conversation:inbox_thread",),
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


def _register_privacy() -> None:
    """Auditors' link section, data-subject part and retention purger (`privacy.py`)."""
    from linking.sections import register_link_section
    from linking.subject_data import register_subject_data
    from notifications import privacy
    from notifications.services.privacy import notifications_erase, notifications_purge
    from portal.retention import register_purger

    register_link_section(
        "notifications.sent",
        "Notifications sent",
        privacy.link_notifications_section,
        order=10,
        empty="Nothing was sent under this link.",
    )
    register_subject_data(
        "notifications.messages",
        export=privacy.notifications_export,
        erase=notifications_erase,
    )
    register_purger("notifications.messages", notifications_purge)


def _register_dead_letters() -> None:
    from portal.navigation import register_nav

    register_nav(
        "notifications.dead_letters",
        "Dead letters",
        "deliveries:dead_letters",
        roles=("admin", "operator", "auditor"),
        order=35,
    )
