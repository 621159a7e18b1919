"""Signals other apps listen to; linking never imports what sits above it."""

from django.dispatch import Signal

# A consent was bound to a Messenger PSID. Sent after commit with `consent_id`.
link_bound = Signal()
# A consent ended (revoked or expired): its pending notifications must stop. Sent after
# commit with `consent_id`.
link_ended = Signal()
# A linked consent ends within days: the customer is reminded and can renew it. Sent after
# commit with `consent_id`.
consent_expiring = Signal()
# Any other verified webhook event for a bank (messages, postbacks, deliveries, reads,
# template status, unknown kinds): sent during the webhook request with `bank_id`,
# `page_id` and the parsed `event`. Receivers must be quick and defer work to workers.
messenger_event = Signal()
# A Messenger link began or ended, for the bank to hear of it (`link.created`,
# `link.ended`): sent INSIDE the transaction that bound or ended it, with `bank_id`,
# `type`, `data` (the callback's documented fields) and `occurred_at`, so that a receiver
# writes what it owes the bank durably, with the change or not at all. Receivers must
# only write rows and defer the rest until after the commit.
link_changed = Signal()
# Someone brought an m.me invitation's ref that cannot link them (another person's, used,
# expired, another Page's): they are told in the chat. Sent after commit with `bank_id`,
# `psid` and `reason`.
referral_refused = Signal()
# A verified webhook event that the product does not model (`readable`) or could not read:
# sent with `bank_id` and `event_type` (a safe label, never who sent it), to be counted.
messenger_event_not_applied = Signal()
# A live consent's accounts or updates changed (`consent_change`): sent INSIDE its
# transaction with `consent_id`, `scopes` and `account_ids` (what is shared from now on),
# so that a receiver cancels what was queued for anything else with the change or not at
# all. Receivers must only write rows and defer the rest until after the commit.
sharing_changed = Signal()
