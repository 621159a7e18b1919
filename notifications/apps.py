from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "notifications"

    def ready(self) -> None:
        from linking.selectors import register_last_update_source
        from notifications import receivers  # noqa: F401  (connects the signal receivers)
        from notifications.panels import hand_back_panel, recent_failures_panel
        from notifications.selectors import deliveries_panel, last_sent_by_consent
        from portal.dashboard import TILE, register_panel

        register_panel("notifications.deliveries", deliveries_panel)
        register_last_update_source("notifications.sent", last_sent_by_consent)
        _register_dead_letters()
        _register_privacy()
        register_panel("notifications.recent_failures", recent_failures_panel)
        register_panel(
            "notifications.hand_back",
            hand_back_panel,
            title="Handed back",
            size=TILE,
            order=14,
            empty="Every update went out on Messenger: none was handed back in the last 30 days.",
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
