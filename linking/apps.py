from django.apps import AppConfig


class LinkingConfig(AppConfig):
    name = "linking"

    def ready(self) -> None:
        from linking import receivers  # noqa: F401  (connects the signal receivers)
        from linking.retention import contacts_purge
        from linking.selectors import (
            customer_actor_names,
            customer_actor_search,
            linked_customers_panel,
        )
        from linking.services import linking_erase
        from linking.subject_data import register_subject_data
        from linking.subject_requests import linking_export
        from portal.dashboard import register_panel
        from portal.navigation import register_nav
        from portal.retention import register_purger
        from portal.timeline import ActorDirectory, register_actor_directory

        register_panel("linking.linked_customers", linked_customers_panel)
        register_subject_data(
            "linking.customer", export=linking_export, erase=linking_erase, order=10
        )
        register_purger("linking.contacts", contacts_purge)
        register_actor_directory(
            "customer",
            ActorDirectory(names=customer_actor_names, search=customer_actor_search),
        )
        register_nav(
            "linking.links",
            "Linked accounts",
            "linking:links",
            roles=("admin", "auditor"),
            current=("linking:link_detail",),
            order=50,
        )
        register_nav(
            "linking.flows",
            "Linking flows",
            "linking:flows",
            roles=("admin", "auditor"),
            order=55,
        )
        register_nav(
            "linking.identity_provider",
            "Customer sign-in",
            "linking:identity_provider",
            roles=("admin", "auditor"),
            order=60,
        )
