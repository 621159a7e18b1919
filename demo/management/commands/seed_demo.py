import os
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from demo import keyfile
from demo.roster import (
    BANK_SLUG,
    CUSTOMER_PASSWORD,
    PRELINKED_USERNAME,
    SEEDED,
    STAFF,
    STAFF_PASSWORD,
)
from demo.seed import SeedError, refuse_outside_demo, seed, totp_codes


class Command(BaseCommand):
    help = (
        "Seed the demo bank against the running portal and its sandbox: the integration "
        "live on a sandbox Page, approved utility templates, staff of every role with "
        "authenticators, customers with demo-directory logins, one of them linked. Safe to "
        "run again. Refused outside local and test settings (it sets known passwords)."
    )

    def add_arguments(self, parser):
        host = os.environ.get("DEMO_HOST", "127.0.0.1")
        port = os.environ.get("DEMO_PORT", "8000")
        parser.add_argument(
            "--url", default=f"http://{host}:{port}", help="Where the portal is running."
        )
        parser.add_argument(
            "--key-file", default="", help="Where to keep the core API key for simulate_core."
        )
        parser.add_argument(
            "--no-summary", action="store_true", help="Seed without printing the logins."
        )
        shown = parser.add_mutually_exclusive_group()
        shown.add_argument(
            "--logins", action="store_true", help="Only print the demo logins and TOTP codes."
        )
        shown.add_argument(
            "--codes", action="store_true", help="Only print the staff's current TOTP codes."
        )

    def handle(self, *args, url: str, key_file: str, logins: bool, codes: bool, **options):
        summary = not options["no_summary"]
        try:
            refuse_outside_demo()
            if not (logins or codes):
                seed(
                    url=url,
                    key_file=Path(key_file) if key_file else keyfile.default_path(),
                    say=self.stdout.write,
                )
        except SeedError as exc:
            raise CommandError(str(exc)) from None
        if codes:
            self.stdout.write(self._codes())
            return
        if not logins:
            self.stdout.write(self.style.SUCCESS("The demo bank is ready."))
            if not summary:
                return
        staff = [f"{s.username} ({s.label})" for s in STAFF]
        customers = ", ".join(
            c.username + (" (linked)" if c.username == PRELINKED_USERNAME else "") for c in SEEDED
        )
        self.stdout.write(
            f"  Staff sign-in:      {', '.join(staff[:2])},\n"
            f"                      {', '.join(staff[2:])}:\n"
            f"                      password '{STAFF_PASSWORD}', then the TOTP code below\n"
            "                      (`manage.py seed_demo --codes` prints fresh ones)\n"
            f"  Customer sign-in:   {customers} at /link/{BANK_SLUG}/ and /my/{BANK_SLUG}/,\n"
            f"                      password '{CUSTOMER_PASSWORD}'\n"
            f"  {self._codes()}"
        )

    def _codes(self) -> str:
        found = totp_codes()
        if not found:
            return "TOTP codes: none yet (run seed_demo first)."
        left = min(c.seconds_left for c in found)
        shown = " · ".join(f"{c.username} {c.code}" for c in found)
        return f"TOTP codes ({left} s left): {shown}"
