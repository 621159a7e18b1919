from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from portal.audit import Actor
from portal.models import ApiKey
from portal.services import api_settings as services


class Command(BaseCommand):
    help = (
        "Give one API key its own rate limit (requests per second and burst), or --reset "
        "it to the default of API_RATE_LIMIT_PER_SECOND / API_RATE_LIMIT_BURST."
    )

    def add_arguments(self, parser):
        parser.add_argument("--key", required=True, help="The key's prefix (bsk_<prefix>_…).")
        parser.add_argument("--per-second", type=float)
        parser.add_argument("--burst", type=int)
        parser.add_argument("--reset", action="store_true")

    def handle(self, *args, key: str, per_second, burst, reset: bool, **options):
        prefix = key.removeprefix("bsk_").split("_", 1)[0]
        api_key = ApiKey.objects.select_related("bank").filter(prefix=prefix).first()
        if api_key is None:
            raise CommandError("No API key with this prefix.")
        if reset == (per_second is not None or burst is not None):
            raise CommandError("Give --per-second and --burst, or --reset.")
        try:
            services.api_key_rate_limit_set(
                actor=Actor.system("api_rate_limit command"),
                api_key=api_key,
                per_second=per_second,
                burst=burst,
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        if reset:
            per_second, burst = settings.API_RATE_LIMIT_PER_SECOND, settings.API_RATE_LIMIT_BURST
        self.stdout.write(f"{api_key}: {per_second:g} requests/s, burst {burst}.")
