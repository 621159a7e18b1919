from django.core.management.base import BaseCommand, CommandError

from portal.audit import Actor
from portal.services import encryption_keys_rotate


class Command(BaseCommand):
    help = (
        "Re-encrypt every stored secret with the first key of FIELD_ENCRYPTION_KEYS. "
        "Run after putting a new key first; remove the old key once it has finished."
    )

    def add_arguments(self, parser):
        parser.add_argument("--batch-size", type=int, default=500)

    def handle(self, *args, batch_size: int, **options):
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        counts = encryption_keys_rotate(
            actor=Actor.system("rotate_encryption_keys"), batch_size=batch_size
        )
        for name, count in counts.items():
            if count:
                self.stdout.write(f"{name}: {count} re-encrypted")
        total = sum(counts.values())
        self.stdout.write(self.style.SUCCESS(f"{total} secrets re-encrypted with the newest key."))
