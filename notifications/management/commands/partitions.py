from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from core.db import partitions
from notifications import services
from notifications.services.partitions import TABLES, keep_months


class Command(BaseCommand):
    help = (
        "Make the month partitions of the events, notifications, outcome feed and delivery "
        "attempts for this month and the next --ahead (default "
        "NOTIFICATIONS_PARTITIONS_AHEAD) where missing, then list every partition with its "
        "rows and size (PostgreSQL only)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--ahead", type=int, default=None, metavar="N")

    def handle(self, *args: Any, ahead: int | None, **options: Any) -> None:
        if not partitions.supported():
            self.stdout.write("Not PostgreSQL: the tables are plain, without partitions.")
            return
        made = services.partitions_create_ahead(ahead=ahead)
        for table in reversed(TABLES):
            for month in made[table.name]:
                self.stdout.write(f"made\t{table.name}\t{month}")
            self.stdout.write(f"{table.name}: keeps {keep_months(table)} months")
            for partition in partitions.partitions_list(table.name):
                self.stdout.write(
                    f"\t{partition.label}\t{partition.name}\t~{partition.rows} rows"
                    f"\t{partition.bytes} bytes"
                )
