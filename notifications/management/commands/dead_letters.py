from django.core.management.base import BaseCommand, CommandError

from notifications import selectors, services
from portal.audit import Actor
from portal.models import Bank


class Command(BaseCommand):
    help = (
        "List a bank's dead-lettered notifications with their last attempt, or replay them: "
        "--replay ID [ID …] for some, --replay-all for every one. Replays are audited."
    )

    def add_arguments(self, parser):
        parser.add_argument("--bank", required=True, help="The bank's slug.")
        parser.add_argument("--replay", type=int, nargs="+", metavar="ID")
        parser.add_argument("--replay-all", action="store_true")

    def handle(self, *args, bank: str, replay, replay_all: bool, **options):
        found = Bank.objects.filter(slug=bank).first()
        if found is None:
            raise CommandError(f"No bank with the slug {bank!r}.")
        if replay and replay_all:
            raise CommandError("Give --replay IDs or --replay-all, not both.")
        if replay or replay_all:
            report = services.dead_letters_replay(
                actor=Actor.system("dead_letters command"),
                bank=found,
                notification_ids=replay,
                every_dead=replay_all,
            )
            for pk, reason in sorted(report.refused.items()):
                self.stdout.write(f"{pk}\tnot replayed: {reason}")
            self.stdout.write(f"{report.count} notification(s) queued again.")
            return
        dead = selectors.dead_letter_list(bank=found)
        for notification in dead:
            attempts = list(notification.delivery_attempts.all())
            last = attempts[-1] if attempts else None
            self.stdout.write(
                f"{notification.pk}\t{notification.event.event_id}\t{notification.event_type}\t"
                f"{notification.reason}\t{len(attempts)} attempt(s)\t"
                + (f"last: {last.outcome} {last.error_code or ''}".rstrip() if last else "")
                + ("\tMAY HAVE BEEN SENT" if notification.uncertain else "")
            )
        self.stdout.write(f"{len(dead)} dead-lettered notification(s).")
