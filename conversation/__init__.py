"""Customers talking to their bank in Messenger: answers within consent, fraud-alert
replies relayed to the bank, and the agent inbox."""
