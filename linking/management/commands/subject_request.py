import json
import sys

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from linking import services, subject_requests
from linking.models import Customer
from portal.audit import Actor
from portal.models import Bank


class Command(BaseCommand):
    help = (
        "A customer's data-subject request. `export` writes everything held about them as "
        "one JSON document (to --output or standard output); `erase` ends their links and "
        "erases the personal data held for Messenger, given --reason and --confirm set to "
        "the customer id. Both are recorded in the audit log."
    )

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["export", "erase"])
        parser.add_argument("--bank", required=True, metavar="SLUG")
        parser.add_argument("--customer", required=True, metavar="EXTERNAL_ID")
        parser.add_argument("--output", metavar="FILE", help="export: write here, not stdout")
        parser.add_argument("--reason", default="", help="erase: why (recorded)")
        parser.add_argument(
            "--confirm", default="", metavar="EXTERNAL_ID", help="erase: the customer id again"
        )

    def handle(self, *args, action, bank, customer, output, reason, confirm, **options):
        bank_obj = Bank.objects.filter(slug=bank).first()
        if bank_obj is None:
            raise CommandError(f"No bank with slug {bank!r}.")
        customer_obj = Customer.objects.for_bank(bank_obj).filter(external_id=customer).first()
        if customer_obj is None:
            raise CommandError(f"No customer {customer!r} at {bank_obj.slug}.")
        actor = Actor.system("manage.py subject_request")
        if action == "export":
            self._export(customer_obj, actor, output)
        else:
            self._erase(customer_obj, actor, reason, confirm)

    def _export(self, customer, actor, output):
        services.subject_export_record(customer=customer, actor=actor)
        stream = open(output, "w", encoding="utf-8") if output else sys.stdout  # noqa: SIM115
        try:
            for piece in subject_requests.subject_export_lines(customer):
                stream.write(piece)
        finally:
            if output:
                stream.close()
        if output:
            self.stderr.write(f"wrote {output}")

    def _erase(self, customer, actor, reason, confirm):
        if confirm != customer.external_id:
            raise CommandError("Pass --confirm with the customer id to erase their data.")
        if not reason.strip():
            raise CommandError("Pass --reason: it is recorded in the audit log.")
        try:
            erasure = services.subject_erase(customer=customer, actor=actor, reason=reason)
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from exc
        except services.ErasureBlockedError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            json.dumps(
                {
                    "erased": customer.external_id,
                    "rows_changed": erasure.rows_changed,
                    "links_revoked": erasure.links_revoked,
                    "messenger_told": erasure.messenger_told,
                }
            )
        )
