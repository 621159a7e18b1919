import json
import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from portal import checkpoints
from portal.selectors import audit_checkpoint_confirm


class Command(BaseCommand):
    help = (
        "Check an exported audit checkpoint: its Ed25519 signature, and that every lane of "
        "the audit log it lists is still there and reaches its signed head. Exits 0 when "
        "both hold, 1 otherwise."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="the checkpoint JSON, as exported from the portal")
        parser.add_argument(
            "--public-key",
            metavar="B64",
            help="the key the checkpoint must be signed with (default: this installation's)",
        )

    def handle(self, *args, file, public_key=None, **options):
        try:
            document = json.loads(Path(file).read_text())
        except (OSError, ValueError) as exc:
            raise CommandError(f"Cannot read {file}: {exc}") from exc
        if not isinstance(document, dict):
            self._fail("malformed checkpoint: not a JSON object")
        expected_key = public_key or checkpoints.public_key_b64()
        if document.get("public_key") != expected_key:
            self._fail("signed with a different key than the one expected")
        try:
            payload = checkpoints.verify(document)
        except checkpoints.CheckpointInvalid as exc:
            self._fail(str(exc))
        if "lanes" in payload:
            name = payload["scope"]
            entries = sum(lane["head_seq"] for lane in payload["lanes"])
            count = len(payload["lanes"])
            heads = f"{entries} entries in {count} lane{'s' * (count != 1)}"
            self.stdout.write(f"signature: valid ({name}, {heads})")
            problem = audit_checkpoint_confirm(payload)
            if problem:
                self._fail(f"the audit log no longer contains the signed heads: {problem}")
            self.stdout.write(
                f"audit log {name}: every lane still reaches its signed head ({heads})"
            )
            return
        # v1, signed before lanes: one chain's head.
        self.stdout.write(f"signature: valid ({payload['chain']}, entry #{payload['head_seq']})")
        problem = audit_checkpoint_confirm(payload)
        if problem:
            self._fail(f"the audit chain no longer contains the signed head: {problem}")
        self.stdout.write(
            f"chain {payload['chain']}: still contains the signed head at entry "
            f"#{payload['head_seq']}"
        )

    def _fail(self, reason: str):
        self.stderr.write(f"checkpoint INVALID: {reason}")
        sys.exit(1)
