import json

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from portal import selectors
from portal.audit import Actor
from portal.services import bank_onboard


class Command(BaseCommand):
    help = (
        "Create a bank with its Messenger integration and a first API key, in one "
        "transaction, and print one JSON object with the values to hand over. The API key "
        "(and the callback signing secret) are shown this once."
    )

    def add_arguments(self, parser):
        parser.add_argument("--name", required=True, help="The bank's display name.")
        parser.add_argument("--slug", required=True, help="URL name, e.g. harbour-bank.")
        parser.add_argument("--page-id", required=True, help="The Facebook Page ID (digits).")
        parser.add_argument("--page-token", required=True, help="The Page access token.")
        parser.add_argument("--app-secret", required=True, help="The Meta app secret.")
        parser.add_argument("--verify-token", help="Webhook verify token (default: generated).")
        parser.add_argument("--callback-url", default="", help="Where answers are relayed.")
        parser.add_argument(
            "--country",
            default="",
            help="Where the bank is, as an ISO 3166-1 alpha-2 code (DE, GB, US): decides the "
            "defaults that depend on the law there (saying the chat is automated in Germany).",
        )
        parser.add_argument(
            "--app-id",
            default="",
            help="The Meta app's ID (digits): tells the bank's own echoes from the Page inbox.",
        )

    def handle(self, *args, **options):
        verify_token = options["verify_token"]
        if verify_token is not None and (not verify_token.strip() or len(verify_token) > 128):
            raise CommandError("--verify-token must be 1 to 128 characters.")
        try:
            onboarded = bank_onboard(
                actor=Actor.system("manage.py onboard_bank"),
                name=options["name"],
                slug=options["slug"],
                page_id=options["page_id"],
                page_access_token=options["page_token"],
                app_secret=options["app_secret"],
                verify_token=verify_token,
                callback_url=options["callback_url"],
                app_id=options["app_id"],
                country=options["country"],
            )
        except ValidationError as exc:
            raise CommandError(f"Nothing was created: {_describe(exc)}") from None
        bank, integration = onboarded.bank, onboarded.integration
        result = {
            "bank": bank.slug,
            "bank_name": bank.name,
            "country": bank.country,
            "api_key": onboarded.api_key_secret,
            "api_key_name": onboarded.api_key.name,
            "webhook_url": selectors.webhook_url(bank),
            "verify_token": integration.verify_token,
            "link_url": selectors.link_url(bank),
            "integration_status": integration.status,
            "callback_url": integration.callback_url,
            "callback_signing_secret": onboarded.signing_secret,
        }
        self.stdout.write(json.dumps(result, indent=2))


OPTION_NAMES = {
    "page_access_token": "--page-token",
    "app_secret": "--app-secret",
    "page_id": "--page-id",
    "callback_url": "--callback-url",
    "app_id": "--app-id",
    "country": "--country",
    "verify_token": "--verify-token",
    "slug": "--slug",
    "name": "--name",
}


def _describe(error: ValidationError) -> str:
    if not hasattr(error, "error_dict"):
        return " ".join(error.messages)
    return "; ".join(
        f"{OPTION_NAMES.get(field, field)}: {' '.join(messages)}"
        for field, messages in error.message_dict.items()
    )
