import sys

from django.core.management.base import BaseCommand, CommandError

from portal.models import Bank
from portal.selectors import audit_chains_verify


class Command(BaseCommand):
    help = (
        "Recompute the audit logs' hash chains, every lane of each. Exits 0 when every log "
        "is intact, 1 naming the first broken lane and entry otherwise."
    )

    def add_arguments(self, parser):
        parser.add_argument("--bank", metavar="SLUG", help="verify only this bank's log")

    def handle(self, *args, bank=None, **options):
        scope = None
        if bank is not None:
            scope = Bank.objects.filter(slug=bank).first()
            if scope is None:
                raise CommandError(f"No bank with slug {bank!r}.")
        reports = audit_chains_verify(bank=scope)
        if scope is not None and not reports:
            self.stdout.write(f"bank {scope.slug}: intact, 0 entries")
        for report in reports:
            stream = self.stdout if report.intact else self.stderr
            stream.write(report.describe())
        if any(not report.intact for report in reports):
            sys.exit(1)
