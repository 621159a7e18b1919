"""Rules -> outbox: newly accepted events become notifications, in the same transaction.

For each event, every active link (an authorised, unexpired consent bound to a PSID)
whose consent covers the event's account and data scope gets one notification, if the
bank's policy sends that event at all; quiet hours defer it. The text is rendered now,
from the bank's template in the customer's language, and kept with the notification.
Everything is set-based: a batch of 1000 events costs a fixed handful of queries.

Where each part lives: `plan` (events to planned notifications, balance superseding),
`rules` (the bank's rules and templates, kept per stamp), `links` (active links of
accounts), `messages` (what a message may show), `write` (the statements storing the
plan, with each person's sequence numbers).
"""

from notifications.services.outbox.links import LINK_COLUMNS, Link, links_collect, links_join
from notifications.services.outbox.messages import (
    BALANCE_PLACEHOLDERS,
    data_categories_for,
    first_name,
    message_data,
)
from notifications.services.outbox.plan import OPEN_STATES, AcceptedEvent, OutboxPlan, outbox_plan
from notifications.services.outbox.write import Planned, sequences_assign

__all__ = [
    "BALANCE_PLACEHOLDERS",
    "LINK_COLUMNS",
    "OPEN_STATES",
    "AcceptedEvent",
    "Link",
    "OutboxPlan",
    "Planned",
    "data_categories_for",
    "first_name",
    "links_collect",
    "links_join",
    "message_data",
    "outbox_plan",
    "sequences_assign",
]
