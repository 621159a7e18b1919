import os
import sys

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from linking.services import identity_provider_configure
from portal.audit import Actor
from portal.models import Bank


class Command(BaseCommand):
    help = (
        "Point a bank's customer sign-in at its OpenID Connect provider. The client secret "
        "is read from OIDC_CLIENT_SECRET or standard input, never from the command line."
    )

    def add_arguments(self, parser):
        parser.add_argument("--bank", required=True, metavar="SLUG")
        parser.add_argument("--issuer", required=True)
        parser.add_argument("--client-id", required=True)
        parser.add_argument("--customer-claim", default="sub")
        parser.add_argument("--scopes", default="openid")
        parser.add_argument("--disable", action="store_true", help="keep it configured but off")

    def handle(self, *args, **options):
        bank = Bank.objects.filter(slug=options["bank"]).first()
        if bank is None:
            raise CommandError(f"No bank with slug {options['bank']!r}.")
        secret = os.environ.get("OIDC_CLIENT_SECRET", "")
        if not secret and not sys.stdin.isatty():
            secret = sys.stdin.readline().strip()
        try:
            provider = identity_provider_configure(
                actor=Actor.system("identity_provider command"),
                bank=bank,
                issuer=options["issuer"],
                client_id=options["client_id"],
                client_secret=secret or None,
                customer_claim=options["customer_claim"],
                scopes=options["scopes"],
                enabled=not options["disable"],
            )
        except ValidationError as exc:
            raise CommandError(
                "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())
            ) from exc
        state = "enabled" if provider.enabled else "disabled"
        self.stdout.write(f"{bank.slug}: customer sign-in at {provider.issuer} ({state})")
