from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from core.encryption import encrypted_fields
from portal.audit import Actor
from portal.services import audit_record


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
        total = 0
        for model, field in encrypted_fields():
            rows = model._base_manager.exclude(**{f"{field.name}__isnull": True})
            pks = list(rows.order_by("pk").values_list("pk", flat=True))
            for start in range(0, len(pks), batch_size):
                with transaction.atomic():
                    batch = rows.select_for_update().filter(pk__in=pks[start : start + batch_size])
                    # Reading decrypts with whichever key fits; writing encrypts with the first.
                    for pk, secret in batch.values_list("pk", field.name):
                        model._base_manager.filter(pk=pk).update(**{field.name: secret})
            if pks:
                self.stdout.write(f"{model._meta.label}.{field.name}: {len(pks)} re-encrypted")
            total += len(pks)
        audit_record(
            actor=Actor.system("rotate_encryption_keys"),
            action="secrets.keys_rotated",
            bank=None,
            details={"secrets_reencrypted": total},
        )
        self.stdout.write(self.style.SUCCESS(f"{total} secrets re-encrypted with the newest key."))
