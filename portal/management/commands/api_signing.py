from django.core.management.base import BaseCommand, CommandError

from portal.audit import Actor
from portal.models import Bank
from portal.services import api_settings as services


class Command(BaseCommand):
    help = (
        "Request signing for a bank's API calls (Standard Webhooks). --enable makes it "
        "mandatory (and creates a secret if there is none), --disable makes it optional "
        "again, --rotate replaces the secret. A new secret is printed once, never again."
    )

    def add_arguments(self, parser):
        parser.add_argument("--bank", required=True, help="The bank's slug.")
        action = parser.add_mutually_exclusive_group(required=True)
        action.add_argument("--enable", action="store_true")
        action.add_argument("--disable", action="store_true")
        action.add_argument("--rotate", action="store_true")

    def handle(self, *args, bank: str, enable: bool, disable: bool, rotate: bool, **options):
        found = Bank.objects.filter(slug=bank).first()
        if found is None:
            raise CommandError(f"No bank with the slug {bank!r}.")
        actor = Actor.system("api_signing command")
        if enable:
            secret = services.api_signing_enable(actor=actor, bank=found)
            self.stdout.write(f"Signed requests are now required for {found.slug}.")
            if secret:
                self._show(secret)
            else:
                self.stdout.write("The existing secret is kept; --rotate replaces it.")
        elif disable:
            services.api_signing_disable(actor=actor, bank=found)
            self.stdout.write(
                f"Signed requests are now optional for {found.slug}; signatures that are "
                "sent are still checked."
            )
        else:
            self._show(services.api_signing_rotate(actor=actor, bank=found))
            self.stdout.write("The previous secret no longer verifies.")

    def _show(self, secret: str) -> None:
        self.stdout.write("Signing secret (shown this once, store it now):")
        self.stdout.write(secret)
