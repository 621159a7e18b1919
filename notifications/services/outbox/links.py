"""A customer's active links: the consents an event about an account may go out under."""

import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection

from core.db.rows import any_of, statement_execute
from linking.models import Account, Consent
from portal.models import Bank


@dataclass(frozen=True)
class Link:
    consent_id: int
    account_id: int
    page_id: str
    psid: str
    scopes: frozenset[str]


def links_join(bank: Bank, now: datetime) -> tuple[str, list[Any]]:
    """The LEFT JOINs adding, to each row of accounts aliased `a`, its active links
    (authorised, unexpired, bound to a PSID): `l.consent_id, k.page_id, k.psid, k.scopes`,
    NULL `k.page_id` where there is none. SQL and parameters, for `links_collect`."""
    through = connection.ops.quote_name(Consent.accounts.through._meta.db_table)
    consent = connection.ops.quote_name(Consent._meta.db_table)
    return (
        f"LEFT JOIN {through} l ON l.account_id = a.id AND a.active "
        f"LEFT JOIN {consent} k ON k.id = l.consent_id AND k.bank_id = %s AND k.status = %s "
        f"AND k.psid <> '' AND (k.expires_at IS NULL OR k.expires_at > %s)",
        [bank.pk, Consent.Status.AUTHORISED, connection.ops.adapt_datetimefield_value(now)],
    )


LINK_COLUMNS = "l.consent_id, k.page_id, k.psid, k.scopes"


def links_collect(rows: Iterable[tuple[Any, ...]]) -> dict[int, list[Link]]:
    """{account pk: its links, by consent} from `(account pk, *LINK_COLUMNS)` rows."""
    links: dict[int, list[Link]] = defaultdict(list)
    for account_id, consent_id, page_id, psid, scopes in rows:
        if page_id is None:  # no link, or not an active one
            continue
        if isinstance(scopes, str):  # a driver that does not decode jsonb
            scopes = json.loads(scopes)
        links[account_id].append(Link(consent_id, account_id, page_id, psid, frozenset(scopes)))
    for found in links.values():
        found.sort(key=lambda link: link.consent_id)
    return links


def _links(bank: Bank, account_ids: set[int], now: datetime) -> dict[int, list[Link]]:
    """Active links covering each of `account_ids` (plain SQL: it runs for every post)."""
    account = connection.ops.quote_name(Account._meta.db_table)
    join, join_params = links_join(bank, now)
    accounts_in, account_params = any_of("a.id", sorted(account_ids))
    with connection.cursor() as cursor:
        statement_execute(
            cursor,
            f"SELECT a.id, {LINK_COLUMNS} FROM {account} a {join} WHERE {accounts_in}",  # noqa: S608
            [*join_params, *account_params],
        )
        return links_collect(cursor.fetchall())
