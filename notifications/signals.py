"""Signals the delivery engine listens to."""

from django.dispatch import Signal

# Events were stored. Sent after commit with `event_ids`: the primary keys of the new
# `Event` rows (duplicates and rejections are not included).
events_accepted = Signal()
# Messenger echoed a message the Page sent that is not a notification: a conversation
# reply (`reference.kind == "r"`) or a message written in Meta's Page inbox (`reference`
# None or not ours, `echo.source == "page_inbox"`). Sent during the webhook request, in
# the event's transaction, with `bank_id`, `page_id`, the stored `echo` (a `MessageEcho`),
# the parsed `event` and the `reference`. A receiver that recognises the message answers
# the echo's outcome (`MessageEcho.Outcome`), else None.
message_echoed = Signal()
# Notifications Messenger cannot carry are being handed back to the bank. Sent inside the
# hand-back's transaction with `bank_id`, `items` (one `notification.undeliverable`
# callback's `data` each) and `at`. The receiver that writes the callbacks answers their
# `webhook-id`s in the same order; if none does, the hand-back is undone.
notifications_undeliverable = Signal()
