"""Who will receive the updates: the Messenger account behind a Log In, asked of the
platform before the customer allows anything.

Two Graph calls (messenger-platform.md §1): the PSID behind the `account_linking_token`,
then that person's name through the User Profile API, which answers only where the Page
may read it. The consent screen waits for neither longer than `BUDGET_SECONDS` in all; a
failure of either, for any reason, means "not confirmed", never a broken page.
"""

import logging
import time
from dataclasses import dataclass

import messenger
from linking.services import page_credentials
from portal.models import Bank

log = logging.getLogger(__name__)

BUDGET_SECONDS = 2.0
# The least worth waiting for: below it the second call is not tried.
MIN_CALL_SECONDS = 0.2


@dataclass(frozen=True)
class MessengerAccount:
    psid: str
    display_name: str


def display_name(first: str | None, last: str | None) -> str:
    """The name minimised to a first name and the last name's initial ("Ana S."); blank
    without a first name, since an initial alone names nobody."""
    first = " ".join((first or "").split())[:60]
    last = (last or "").strip()
    if not first:
        return ""
    return f"{first} {last[0].upper()}." if last else first


def messenger_account_for(bank: Bank, account_linking_token: str) -> MessengerAccount | None:
    """The Messenger account behind the token, with its minimised name; None where the
    platform could not say (no running integration, an error, no permission, too slow)."""
    creds = page_credentials(bank.pk)
    if creds is None or not account_linking_token:
        return None
    client = messenger.get_client()
    started = time.monotonic()
    try:
        psid = client.psid_for_linking_token(
            creds, account_linking_token, timeout=BUDGET_SECONDS / 2
        )
        left = BUDGET_SECONDS - (time.monotonic() - started)
        if left < MIN_CALL_SECONDS:
            return None
        profile = client.user_profile(creds, psid, timeout=left)
    except Exception as exc:  # noqa: BLE001 - whatever fails, the page says "not confirmed"
        log.info(
            "Messenger account for a Log In of bank %s not confirmed: %s",
            bank.slug,
            messenger.error_kind(exc),
        )
        return None
    name = display_name(profile.first_name, profile.last_name)
    return MessengerAccount(psid=psid, display_name=name) if name else None
