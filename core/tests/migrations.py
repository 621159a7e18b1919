"""Migration tests: a database as an older release left it, then migrated forward.

    with schema_at([("linking", "0006_people_are_per_bank")]) as apps:
        apps.get_model("linking", "Consent").objects.create(...)   # the old code's rows
        migrate_to([("linking", "0007_platform_unlink")])          # the step under test

The database is put back to the latest migrations whatever happens, so the tests after
find the schema they expect. Needs a transactional test (`transactional_db`).
"""

from collections.abc import Iterator
from contextlib import contextmanager

from django.apps.registry import Apps
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

Targets = list[tuple[str, str | None]]


def migrate_to(targets: Targets) -> None:
    MigrationExecutor(connection).migrate(targets)


def migrate_to_latest() -> None:
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())


@contextmanager
def schema_at(targets: Targets) -> Iterator[Apps]:
    """The schema at `targets` (an app at None: not migrated at all), and its models."""
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    executor.loader.build_graph()
    state_at = [target for target in targets if target[1] is not None]
    try:
        yield executor.loader.project_state(state_at).apps
    finally:
        migrate_to_latest()
