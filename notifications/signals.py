"""Signals the delivery engine listens to."""

from django.dispatch import Signal

# Events were stored. Sent after commit with `event_ids`: the primary keys of the new
# `Event` rows (duplicates and rejections are not included).
events_accepted = Signal()
